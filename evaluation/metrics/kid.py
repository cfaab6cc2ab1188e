"""Kernel Inception Distance (Bińkowski et al., "Demystifying MMD GANs", ICLR 2018, arXiv 1801.01401).

Unbiased estimate of the squared MMD with the cubic polynomial kernel k(x, y) = (gamma x.y + coef0)^degree,
gamma = 1/D, coef0 = 1, averaged over random subsets: 100 subsets of m = min(1000, N1, N2) samples each, drawn
without replacement, as clean-fid's ``kernel_distance`` (torch-fidelity and torchmetrics raise instead when
N < 1000). Returns the mean and the (population, ddof=0) standard deviation over subsets, as torch-fidelity
(``metric_kid.py``). KID is unbiased, so unlike FID it can be negative for two samples of one distribution and
its expectation does not depend on N: the better choice for small sets such as IDRiD's 81 images. Usually
reported x 10^3.
"""

from __future__ import annotations

import numpy as np

from ._arrays import to_numpy


def polynomial_kernel(
    x: np.ndarray, y: np.ndarray, *, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> np.ndarray:
    """Kernel matrix ``(len(x), len(y))`` of (gamma x.y + coef0)^degree; gamma defaults to 1/D."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (gamma * (x @ y.T) + coef0) ** degree


def mmd2_unbiased(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    """Unbiased MMD^2 from kernel matrices of two equal-size samples (diagonals of K_XX and K_YY excluded)."""
    m = k_xx.shape[0]
    sum_xx = k_xx.sum() - np.trace(k_xx)
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    features1: np.ndarray,
    features2: np.ndarray,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
) -> tuple[float, float]:
    """KID (mean, std) over ``subsets`` random subsets of ``min(subset_size, N1, N2)`` samples each.

    Symmetric in distribution; deterministic for a given ``seed``.
    """
    x = to_numpy(features1, np.float64)
    y = to_numpy(features2, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"need feature matrices (N, D) of equal D, got {x.shape} and {y.shape}")
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError("KID needs at least 2 samples per set")
    rng = np.random.default_rng(seed)
    kw = {"degree": degree, "gamma": gamma, "coef0": coef0}
    # Kernel matrices of the whole sets, computed once, when they fit (4096^2 float64 = 128 MiB each): 100
    # subsets of 1000 then cost index look-ups instead of 300 matrix products of (1000, D) x (D, 1000).
    precompute = max(len(x), len(y)) <= 4096
    if precompute:
        k_xx, k_yy, k_xy = polynomial_kernel(x, x, **kw), polynomial_kernel(y, y, **kw), polynomial_kernel(x, y, **kw)
    values = np.empty(subsets)
    for i in range(subsets):
        ix = rng.choice(len(x), m, replace=False)
        iy = rng.choice(len(y), m, replace=False)
        if precompute:
            values[i] = mmd2_unbiased(k_xx[np.ix_(ix, ix)], k_yy[np.ix_(iy, iy)], k_xy[np.ix_(ix, iy)])
        else:
            xs, ys = x[ix], y[iy]  # (m, D)
            values[i] = mmd2_unbiased(
                polynomial_kernel(xs, xs, **kw), polynomial_kernel(ys, ys, **kw), polynomial_kernel(xs, ys, **kw)
            )
    return float(values.mean()), float(values.std())
