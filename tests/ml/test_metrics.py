"""The metric registry, KID, PRDC, SWD and the memorisation check."""

import ast
import pathlib

import numpy as np
import pytest
import torch

from evaluation import metrics
from evaluation.metrics import METRICS, get_metric, register
from evaluation.metrics.kid import kernel_inception_distance
from evaluation.metrics.memorisation import memorisation_check, nearest_neighbours
from evaluation.metrics.prdc import prdc
from evaluation.metrics.swd import _pyr_up, laplacian_pyramid, sliced_wasserstein_distance

from .conftest import smooth_images

# --- registry --------------------------------------------------------------------------------------------------


def _tiny_inputs(kind: str):
    rng = np.random.default_rng(0)
    if kind == "features":
        return rng.standard_normal((20, 8)), rng.standard_normal((24, 8)) + 0.5, {}
    if kind == "images":
        return smooth_images(6, size=32, seed=1), smooth_images(5, size=32, seed=2), {}
    gt = rng.integers(0, 3, (4, 16, 16))
    pred = np.where(rng.random((4, 16, 16)) < 0.8, gt, 0)
    return gt, pred, {"n_classes": 3}


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_registered_metric_runs_at_tiny_size(name):
    metric = get_metric(name)
    reference, candidate, options = _tiny_inputs(metric.inputs)
    result = metric.fn(reference, candidate, **options)
    assert result and all(isinstance(k, str) and isinstance(v, float) for k, v in result.items())
    assert any(np.isfinite(v) for v in result.values())
    assert metric.description


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_registered_metric_accepts_torch_tensors(name):
    metric = get_metric(name)
    reference, candidate, options = _tiny_inputs(metric.inputs)
    expected = metric.fn(reference, candidate, **options)
    got = metric.fn(torch.from_numpy(np.asarray(reference)), torch.from_numpy(np.asarray(candidate)), **options)
    assert got.keys() == expected.keys()
    np.testing.assert_allclose(list(got.values()), list(expected.values()), rtol=1e-6)


def test_registry_contents_and_errors():
    assert {"fid", "kid", "prdc", "swd", "memorisation_pixel", "memorisation_features", "dice", "hd95"} <= set(METRICS)
    with pytest.raises(KeyError, match="known"):
        get_metric("nope")
    with pytest.raises(ValueError, match="already registered"):
        register("fid", inputs="features")(lambda a, b: {})
    with pytest.raises(ValueError, match="inputs"):
        register("x", inputs="pixels")


def test_metrics_package_never_imports_django():
    folder = pathlib.Path(metrics.__file__).parent
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] in {"django", "rest_framework"} for n in names), path


# --- KID -------------------------------------------------------------------------------------------------------


def test_kid_unbiased_near_zero_for_same_distribution_positive_when_shifted():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((400, 16)), rng.standard_normal((400, 16))
    same_mean, same_std = kernel_inception_distance(a, b, subsets=50, subset_size=200)
    shifted_mean, _ = kernel_inception_distance(a, b + 0.5, subsets=50, subset_size=200)
    assert abs(same_mean) < 3 * same_std + 1e-3
    assert shifted_mean > 10 * max(abs(same_mean), same_std)


def test_kid_deterministic_by_seed_and_uses_min_subset_size():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((30, 4)), rng.standard_normal((20, 4)) + 1
    assert kernel_inception_distance(a, b, seed=3) == kernel_inception_distance(a, b, seed=3)
    # m = min(1000, 30, 20) = 20: with b complete in every subset, only a's subset varies
    mean, std = kernel_inception_distance(b, b, subsets=5)
    assert std == pytest.approx(0, abs=1e-12)


# --- PRDC ------------------------------------------------------------------------------------------------------


def test_prdc_same_distribution_and_disjoint_clouds():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((300, 4))
    same = prdc(real, rng.standard_normal((300, 4)))
    assert same["precision"] > 0.85 and same["recall"] > 0.85
    assert 0.7 < same["density"] < 1.3 and same["coverage"] > 0.85
    far = prdc(real, rng.standard_normal((300, 4)) + 20)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # a collapsed generator (all samples near one real point) has high precision but low recall and coverage
    collapsed = prdc(real, real[:1] + 0.01 * rng.standard_normal((300, 4)))
    assert collapsed["precision"] == 1.0 and collapsed["recall"] < 0.1 and collapsed["coverage"] < 0.1


# --- SWD -------------------------------------------------------------------------------------------------------


def test_laplacian_pyramid_reconstructs_the_image():
    x = torch.from_numpy(smooth_images(2, size=32, channels=2).astype(np.float64))
    pyr = laplacian_pyramid(x, 3)
    assert [p.shape[-1] for p in pyr] == [32, 16, 8]
    rec = pyr[-1]
    for band in reversed(pyr[:-1]):
        rec = band + _pyr_up(rec, band.shape[-2:])
    assert torch.allclose(rec, x, atol=1e-12)


def test_swd_small_for_same_set_large_for_noise_and_deterministic():
    rng = np.random.default_rng(0)
    structured = smooth_images(24, size=32, seed=1)
    other_structured = smooth_images(24, size=32, seed=2)
    noise = rng.random((24, 1, 32, 32)).astype(np.float32)
    kw = {"patches_per_image": 32, "seed": 0}
    same = sliced_wasserstein_distance(structured, structured, **kw)
    similar = sliced_wasserstein_distance(structured, other_structured, **kw)
    different = sliced_wasserstein_distance(structured, noise, **kw)
    assert set(same) == {"swd_32", "swd_16", "swd_avg"}
    assert different["swd_avg"] > 3 * similar["swd_avg"]
    assert different["swd_avg"] > 3 * same["swd_avg"]
    assert sliced_wasserstein_distance(structured, noise, **kw) == different
    assert sliced_wasserstein_distance(structured, noise, patches_per_image=32, seed=1) != different


def test_swd_rgb_and_unequal_set_sizes():
    res = sliced_wasserstein_distance(smooth_images(5, channels=3, seed=1), smooth_images(8, channels=3, seed=2))
    assert np.isfinite(res["swd_avg"]) and res["swd_avg"] > 0


# --- memorisation ----------------------------------------------------------------------------------------------


def test_memorisation_flags_an_exact_copy_and_few_fresh_samples():
    # Noise textures: fresh samples of the training distribution are as far from the training set as
    # training images are from each other; the copy of training image 17 (placed at index 4) is at distance 0.
    rng = np.random.default_rng(1)
    training = rng.random((200, 1, 16, 16))
    fresh = rng.random((100, 1, 16, 16))
    synthetic = np.concatenate([fresh[:4], training[17:18], fresh[4:]])
    result = memorisation_check(synthetic, training)
    assert result.flagged[4] and result.nn_index[4] == 17 and result.nn_distance[4] == 0.0
    others = np.delete(result.flagged, 4)
    # The percentile rule flags about 1 % of genuine fresh samples by construction; the ratio rule none.
    assert others.mean() <= 0.05
    assert np.delete(result.ratio, 4).min() > 0.5
    assert 4 in result.summary()["flagged_indices"]
    assert result.real_nn_distance.shape == (200,) and (result.real_nn_distance > 0).all()


def test_nearest_neighbours_exclude_self_and_chunking():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 3))
    idx, dist = nearest_neighbours(x, x, exclude_self=True, chunk=3)
    assert (idx != np.arange(10)).all()
    full = np.linalg.norm(x[:, None] - x[None], axis=-1) + np.diag(np.full(10, np.inf))
    np.testing.assert_allclose(dist, full.min(axis=1))
    np.testing.assert_array_equal(idx, full.argmin(axis=1))
