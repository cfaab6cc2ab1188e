"""Precision, recall, density and coverage of generated features against real ones.

Naeem, Oh, Uh, Choi, Yoo, "Reliable Fidelity and Diversity Metrics for Generative Models", ICML 2020
(arXiv 2002.09797); this follows their reference code ``clovaai/generative-evaluation-prdc:prdc/prdc.py``:
Euclidean distances, the k-NN radius of each sample within its own set (itself excluded), strict ``<`` for
ball membership, k = 5 by default. Precision and recall are Kynkäänniemi et al.'s (NeurIPS 2019) manifold
estimates; density (can exceed 1) and coverage use only the real balls and resist outliers.
"""

from __future__ import annotations

import numpy as np

from ._arrays import to_numpy


def pairwise_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean distance matrix ``(len(x), len(y))`` in float64."""
    x = to_numpy(x, np.float64)
    y = to_numpy(y, np.float64)
    sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T
    # The expansion can go slightly negative by rounding for (near-)identical rows.
    return np.sqrt(np.clip(sq, 0, None))


def knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance of each row of ``x`` to its k-th nearest other row ``(N,)``."""
    if len(x) <= k:
        raise ValueError(f"need more than k={k} samples, got {len(x)}")
    d = pairwise_distances(x, x)
    # k+1-th smallest per row, because the smallest is the row itself at distance 0.
    return np.partition(d, k, axis=1)[:, k]


def prdc(real_features: np.ndarray, fake_features: np.ndarray, *, k: int = 5) -> dict[str, float]:
    """Precision, recall, density, coverage of ``fake_features (M, D)`` w.r.t. ``real_features (N, D)``."""
    real = to_numpy(real_features, np.float64)
    fake = to_numpy(fake_features, np.float64)
    real_r = knn_radii(real, k)  # (N,)
    fake_r = knn_radii(fake, k)  # (M,)
    d = pairwise_distances(real, fake)  # (N, M)
    inside_real = d < real_r[:, None]  # (N, M): fake j inside the ball of real i
    return {
        "precision": float(inside_real.any(axis=0).mean()),
        "recall": float((d < fake_r[None, :]).any(axis=1).mean()),
        "density": float(inside_real.sum(axis=0).mean() / k),
        "coverage": float((d.min(axis=1) < real_r).mean()),
    }
