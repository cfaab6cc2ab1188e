"""Shared fixtures for the pure-ML metric tests: tiny images and one random-weight FID-Inception per session."""

import numpy as np
import pytest

from evaluation.metrics.features import build_random_fid_inception, extract_features


def smooth_images(n: int, size: int = 32, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Random blurry blobs in [0, 1]: ``(n, channels, size, size)`` float32."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, channels, size, size), np.float32)
    for i in range(n):
        for c in range(channels):
            cy, cx, r = rng.uniform(0.2, 0.8, 2).tolist() + [rng.uniform(0.1, 0.3)]
            out[i, c] = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
    return out


@pytest.fixture(scope="session")
def random_inception():
    """FID-Inception with random weights, BatchNorm calibrated on 8 images (mixed smooth and noisy)."""
    rng = np.random.default_rng(1)
    calib = np.concatenate([smooth_images(4, seed=1), rng.random((4, 1, 32, 32), dtype=np.float32)])
    return build_random_fid_inception(calib, seed=0)


@pytest.fixture(scope="session")
def inception_features(random_inception):
    """Pool3 features of 16 smooth and 16 noisy 32x32 grayscale images: ``((16, 2048), (16, 2048))``."""
    rng = np.random.default_rng(2)
    smooth = smooth_images(16, seed=3)
    noisy = np.clip(smooth_images(16, seed=4) + 0.3 * rng.standard_normal((16, 1, 32, 32)), 0, 1).astype(np.float32)
    return extract_features(random_inception, smooth, batch_size=8), extract_features(random_inception, noisy)
