"""Dice and HD95 of label maps, with nnU-Net's conventions for empty classes.

Dice (per image, per class c), as ``MIC-DKFZ/nnUNet:nnunetv2/evaluation/evaluate_predictions.py``:

* Dice = 2 TP / (2 TP + FP + FN) on the boolean masks ``pred == c`` and ``gt == c``;
* class absent from both ground truth and prediction -> **NaN** (nothing to score), excluded from every mean
  (``np.nanmean``) and counted in ``n_empty``;
* ground truth empty but prediction not -> 0 (false positives are penalised; MONAI's default
  ``ignore_empty=True`` would hide them);
* prediction empty but ground truth not -> 0.

Means are over foreground classes 1..K-1 (class 0 = background is never averaged in).

HD95 (mm), as medpy's ``hd95``: surfaces are the mask minus its erosion (4-/6-connected structure, the image
border counts as outside), distances via ``scipy.ndimage.distance_transform_edt`` with ``sampling=spacing``,
the 95th percentile of the pooled directed surface distances in both directions. Empty sets: both empty ->
NaN (undefined, like Dice); exactly one empty -> ``empty_penalty`` if given (e.g. the image diagonal in mm),
else NaN (undefined; medpy raises, MONAI returns inf/NaN). Dice already penalises that case with 0, and
``hd95_scores`` counts such cases in ``n_undefined``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from ._arrays import to_numpy


def _as_labels(x: np.ndarray) -> np.ndarray:
    arr = to_numpy(x)
    if not np.issubdtype(arr.dtype, np.integer) and not np.issubdtype(arr.dtype, np.bool_):
        raise ValueError(f"label maps must be integer class indices, got {arr.dtype}")
    return arr


def dice_coefficient(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice of two boolean masks; NaN when both are empty."""
    pred, gt = to_numpy(pred, bool), to_numpy(gt, bool)
    tp = np.count_nonzero(pred & gt)
    fp = np.count_nonzero(pred & ~gt)
    fn = np.count_nonzero(~pred & gt)
    denom = 2 * tp + fp + fn
    return float("nan") if denom == 0 else 2 * tp / denom


def dice_per_class(pred: np.ndarray, gt: np.ndarray, n_classes: int) -> np.ndarray:
    """Dice of foreground classes 1..K-1 for one label map ``(H, W)`` (or any shape): ``(K-1,)``, NaN if empty."""
    pred, gt = _as_labels(pred), _as_labels(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    return np.array([dice_coefficient(pred == c, gt == c) for c in range(1, n_classes)])


def _nanmean(x: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    # np.nanmean warns on all-NaN slices; here "all empty" legitimately means "no score" (NaN).
    x = np.asarray(x, dtype=np.float64)
    count = np.sum(~np.isnan(x), axis=axis)
    total = np.nansum(x, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def dice_scores(preds: np.ndarray, gts: np.ndarray, n_classes: int) -> dict[str, object]:
    """Dice of a batch of label maps ``(N, H, W)``.

    Returns plain data: ``per_image`` ``(N, K-1)`` (NaN = class absent from both), ``per_class`` ``(K-1,)``
    nanmean over images, ``n_empty`` per class, ``per_image_mean`` ``(N,)`` (nanmean over classes),
    ``foreground_mean`` = mean of the per-class means (nnU-Net's ``foreground_mean``), ``std_per_class``.
    """
    preds, gts = _as_labels(preds), _as_labels(gts)
    if preds.shape != gts.shape or preds.ndim < 2:
        raise ValueError(f"predictions {preds.shape} and ground truth {gts.shape} must be equal (N, H, W)")
    per_image = np.stack([dice_per_class(p, g, n_classes) for p, g in zip(preds, gts)])  # (N, K-1)
    per_class = _nanmean(per_image, axis=0)  # (K-1,)
    with np.errstate(invalid="ignore"):
        std = np.array([np.nanstd(col) if np.any(~np.isnan(col)) else np.nan for col in per_image.T])
    return {
        "per_image": per_image,
        "per_class": per_class,
        "std_per_class": std,
        "n_empty": np.isnan(per_image).sum(axis=0),
        "per_image_mean": _nanmean(per_image, axis=1),
        "foreground_mean": float(_nanmean(per_class)),
    }


def _surface(mask: np.ndarray) -> np.ndarray:
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask ^ ndimage.binary_erosion(mask, structure=structure, iterations=1)


def _surface_distances(a: np.ndarray, b: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Distances (mm) from each surface voxel of ``a`` to the nearest surface voxel of ``b``."""
    dt = ndimage.distance_transform_edt(~_surface(b), sampling=spacing)
    return dt[_surface(a)]


def hausdorff_distance_95(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing: Sequence[float] | None = None,
    *,
    empty_penalty: float | None = None,
) -> float:
    """HD95 in mm between two boolean masks; ``spacing`` per axis in mm (default 1). See module docstring."""
    pred, gt = to_numpy(pred, bool), to_numpy(gt, bool)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    spacing = tuple(float(s) for s in spacing) if spacing is not None else (1.0,) * pred.ndim
    if len(spacing) != pred.ndim:
        raise ValueError(f"spacing {spacing} does not match {pred.ndim} dimensions")
    has_pred, has_gt = pred.any(), gt.any()
    if not has_pred and not has_gt:
        return float("nan")
    if not has_pred or not has_gt:
        return float("nan") if empty_penalty is None else float(empty_penalty)
    d = np.concatenate([_surface_distances(pred, gt, spacing), _surface_distances(gt, pred, spacing)])
    return float(np.percentile(d, 95))


def hd95_scores(
    preds: np.ndarray,
    gts: np.ndarray,
    n_classes: int,
    spacing: Sequence[float] | None = None,
    *,
    empty_penalty: float | None = None,
) -> dict[str, object]:
    """HD95 (mm) per image and foreground class ``(N, K-1)``, per-class nanmean, and ``n_undefined`` per class."""
    preds, gts = _as_labels(preds), _as_labels(gts)
    if preds.shape != gts.shape:
        raise ValueError(f"predictions {preds.shape} and ground truth {gts.shape} differ in shape")
    per_image = np.array(
        [
            [hausdorff_distance_95(p == c, g == c, spacing, empty_penalty=empty_penalty) for c in range(1, n_classes)]
            for p, g in zip(preds, gts)
        ]
    ).reshape(len(preds), n_classes - 1)
    per_class = _nanmean(per_image, axis=0)
    return {
        "per_image": per_image,
        "per_class": per_class,
        "n_undefined": np.isnan(per_image).sum(axis=0),
        "foreground_mean": float(_nanmean(per_class)),
    }
