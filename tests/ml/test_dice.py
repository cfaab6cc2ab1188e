"""Dice and HD95 conventions, checked on hand-made label maps."""

import math

import numpy as np
import pytest

from evaluation.metrics.dice import dice_coefficient, dice_per_class, dice_scores, hausdorff_distance_95, hd95_scores


def square(top: int, left: int, size: int = 20, shape=(40, 40)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[top : top + size, left : left + size] = True
    return mask


def test_dice_edge_cases():
    a = square(5, 5)
    empty = np.zeros_like(a)
    assert dice_coefficient(a, a) == 1.0
    assert dice_coefficient(a, square(25, 25, size=10)) == 0.0  # disjoint
    assert math.isnan(dice_coefficient(empty, empty))  # absent from both: nothing to score
    assert dice_coefficient(a, empty) == 0.0  # prediction on empty ground truth
    assert dice_coefficient(empty, a) == 0.0  # empty prediction on non-empty ground truth
    assert dice_coefficient(square(0, 0, 4), square(0, 2, 4)) == pytest.approx(2 * 8 / 32)


def test_absent_class_is_nan_and_excluded_from_means():
    gt = np.zeros((2, 10, 10), np.int64)
    gt[:, :5] = 1  # class 1 in both images; class 2 nowhere in the ground truth
    pred = gt.copy()
    pred[1, 8:, 8:] = 2  # false positive of class 2 in image 1 only
    res = dice_scores(pred, gt, n_classes=3)
    assert res["per_image"][0].tolist()[0] == 1.0 and math.isnan(res["per_image"][0][1])
    assert res["per_image"][1].tolist() == [1.0, 0.0]
    assert res["per_class"].tolist() == [1.0, 0.0]  # class 2: the NaN of image 0 is excluded, the 0 counts
    assert res["n_empty"].tolist() == [0, 1]
    assert res["per_image_mean"].tolist() == [1.0, 0.5]
    assert res["foreground_mean"] == 0.5


def test_class_absent_everywhere_is_excluded_from_foreground_mean():
    gt = np.zeros((1, 6, 6), np.int64)
    gt[0, :3] = 1
    res = dice_scores(gt.copy(), gt, n_classes=3)
    assert math.isnan(res["per_class"][1]) and res["foreground_mean"] == 1.0
    assert dice_per_class(gt[0], gt[0], 3)[0] == 1.0


def test_rejects_float_or_mismatched_labels():
    with pytest.raises(ValueError, match="integer"):
        dice_scores(np.zeros((1, 4, 4)), np.zeros((1, 4, 4), np.int64), 2)
    with pytest.raises(ValueError, match="shape"):
        dice_per_class(np.zeros((4, 4), np.int64), np.zeros((4, 5), np.int64), 2)


def test_hd95_shifted_square_with_spacing():
    gt, pred = square(10, 10), square(10, 13)  # shifted by 3 px along x
    assert hausdorff_distance_95(pred, gt) == pytest.approx(3.0)
    assert hausdorff_distance_95(pred, gt, spacing=(2.0, 2.0)) == pytest.approx(6.0)
    assert hausdorff_distance_95(pred, gt, spacing=(1.0, 2.0)) == pytest.approx(6.0)  # x is the 2 mm axis
    assert hausdorff_distance_95(gt, gt, spacing=(2.0, 2.0)) == 0.0


def test_hd95_empty_conventions():
    a, empty = square(5, 5), np.zeros((40, 40), bool)
    assert math.isnan(hausdorff_distance_95(empty, empty))
    assert math.isnan(hausdorff_distance_95(a, empty))
    assert math.isnan(hausdorff_distance_95(empty, a))
    assert hausdorff_distance_95(empty, a, empty_penalty=56.6) == 56.6


def test_hd95_scores_counts_undefined():
    gt = np.stack([square(10, 10).astype(np.int64), np.zeros((40, 40), np.int64)])
    pred = np.stack([square(10, 13).astype(np.int64), np.zeros((40, 40), np.int64)])
    res = hd95_scores(pred, gt, n_classes=2, spacing=(2.0, 2.0))
    assert res["per_class"].tolist() == [6.0] and res["n_undefined"].tolist() == [1]
