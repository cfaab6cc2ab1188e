"""FID: agreement with pytorch-fid's sqrtm formula, and its basic properties."""

import numpy as np
import pytest
from scipy import linalg

from evaluation.metrics.fid import feature_statistics, fid_from_features, frechet_distance


def pytorch_fid_frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """pytorch-fid 0.3.0 ``calculate_frechet_distance`` (sqrtm without the deprecated ``disp`` argument)."""
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


def _reference(f1, f2):
    return pytorch_fid_frechet_distance(*feature_statistics(f1), *feature_statistics(f2))


def test_matches_pytorch_fid_on_inception_features(inception_features):
    smooth, noisy = inception_features
    # 256 of the 2048 dims keeps scipy's sqrtm fast on 2 cores; 16 samples make the covariances rank-deficient
    # (rank 15), the hard case that real small medical sets produce.
    f1, f2 = smooth[:, :256], noisy[:, :256]
    ours, ref = fid_from_features(f1, f2), _reference(f1, f2)
    assert ref > 0
    assert ours == pytest.approx(ref, rel=1e-4)
    # full 2048 dims against the eigenvalue identity tr sqrt(S1 S2) = sum sqrt(eig(S1 S2))
    mu1, s1 = feature_statistics(smooth)
    mu2, s2 = feature_statistics(noisy)
    tr = np.sqrt(np.linalg.eigvals(s1 @ s2).astype(complex)).real.sum()
    eig_fid = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * tr
    assert fid_from_features(smooth, noisy) == pytest.approx(eig_fid, rel=1e-4)


def test_matches_pytorch_fid_on_full_rank_gaussians():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 64)) @ rng.standard_normal((64, 64))
    b = rng.standard_normal((300, 64)) * 2 + 0.5
    assert fid_from_features(a, b) == pytest.approx(_reference(a, b), rel=1e-8)


def test_zero_for_identical_sets_symmetric_and_positive(inception_features):
    smooth, noisy = (f[:, :512] for f in inception_features)  # 512 dims: each FID on 2048 costs ~2 s here
    assert fid_from_features(smooth, smooth) == pytest.approx(0, abs=1e-6 * fid_from_features(smooth, noisy))
    assert fid_from_features(smooth, noisy) > 0
    assert fid_from_features(smooth, noisy) == pytest.approx(fid_from_features(noisy, smooth), rel=1e-6)


def test_equal_covariances_give_squared_mean_distance():
    # pytorch-fid's own unit test of the formula
    sigma = np.diag([1.0, 2.0, 3.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 2.0])
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(9.0)


def test_singular_covariance_falls_back_to_eps_offset():
    s = np.zeros((3, 3))
    assert frechet_distance(np.zeros(3), s, np.ones(3), s) == pytest.approx(3.0, abs=1e-5)
    bad = np.full((2, 2), np.nan)
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.zeros(2), bad, np.zeros(2), np.eye(2))
