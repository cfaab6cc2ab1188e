"""Memorisation check: is a synthetic image (nearly) a copy of a training image?

For each synthetic image, its nearest training image by Euclidean distance, in pixel space and/or in a feature
space (e.g. FID-Inception pool3). The distances are judged against the real-real baseline: for each training
image, the distance to its nearest *other* training image. A synthetic image is flagged when

* its NN distance is below the ``percentile``-th percentile of the real-real NN distances ("closer to a
  training image than 99 % of training images are to each other"), or
* its NN distance divided by the median real-real NN distance is below ``ratio_threshold``.

Exact and near copies (distance ~0) are flagged by both rules. Expect about ``percentile`` % false flags for
fresh samples of the training distribution, so treat flags as candidates for a visual check, not as proof.
The baseline excludes the image itself, so it is computed from N-1 candidates while synthetic images have N:
a slight bias towards flagging, acceptable for a screening tool. Related work: the nearest-neighbour figures
of GAN papers; Carlini et al., "Extracting Training Data from Diffusion Models", USENIX Security 2023
(distance relative to the typical nearest-neighbour distance); Meehan, Chaudhuri, Dasgupta, "A Non-Parametric
Test to Detect Data-Copying in Generative Models", AISTATS 2020.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._arrays import to_numpy


@dataclass(frozen=True)
class MemorisationResult:
    """Per synthetic image: nearest training index, distance, ratio to the median baseline and flag."""

    nn_index: np.ndarray  # (M,) int: index into the training set
    nn_distance: np.ndarray  # (M,) float64
    ratio: np.ndarray  # (M,) nn_distance / median real-real NN distance
    flagged: np.ndarray  # (M,) bool
    real_nn_distance: np.ndarray  # (N,) each training image to its nearest other training image
    threshold: float  # the percentile threshold on nn_distance

    def summary(self) -> dict[str, float | int | list[int]]:
        """Plain data for storage: counts and the flagged indices."""
        return {
            "n_synthetic": len(self.nn_distance),
            "n_flagged": int(self.flagged.sum()),
            "fraction_flagged": float(self.flagged.mean()) if len(self.flagged) else 0.0,
            "flagged_indices": np.flatnonzero(self.flagged).tolist(),
            "threshold": self.threshold,
            "median_real_nn_distance": float(np.median(self.real_nn_distance)),
            "median_synthetic_nn_distance": float(np.median(self.nn_distance)) if len(self.nn_distance) else 0.0,
        }


def _flatten(x: np.ndarray) -> np.ndarray:
    x = to_numpy(x, np.float64)
    return x.reshape(len(x), -1)


def nearest_neighbours(
    query: np.ndarray, reference: np.ndarray, *, exclude_self: bool = False, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Index ``(Q,)`` and Euclidean distance ``(Q,)`` of each query row's nearest reference row.

    Rows are flattened, so images ``(N, C, H, W)`` and features ``(N, D)`` both work. With ``exclude_self``
    (query is reference) an item is never its own neighbour. Chunked so memory stays O(chunk * N).
    """
    q, r = _flatten(query), _flatten(reference)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"query and reference have different sizes per item: {q.shape[1]} vs {r.shape[1]}")
    r_sq = (r * r).sum(1)
    idx = np.empty(len(q), dtype=np.int64)
    dist = np.empty(len(q))
    for start in range(0, len(q), chunk):
        qc = q[start : start + chunk]
        d2 = (qc * qc).sum(1)[:, None] + r_sq[None, :] - 2 * qc @ r.T  # (chunk, N)
        if exclude_self:
            rows = np.arange(len(qc))
            d2[rows, start + rows] = np.inf
        best = d2.argmin(axis=1)
        idx[start : start + len(qc)] = best
        # Exact distances for the winners: the expansion above loses precision for near-identical rows.
        dist[start : start + len(qc)] = np.sqrt(((qc - r[best]) ** 2).sum(1))
    return idx, dist


def memorisation_check(
    synthetic: np.ndarray,
    training: np.ndarray,
    *,
    percentile: float = 1.0,
    ratio_threshold: float = 0.1,
) -> MemorisationResult:
    """Nearest training neighbour of each synthetic item and the copy flags (see module docstring).

    ``synthetic (M, ...)`` and ``training (N >= 2, ...)``: images ``(N, C, H, W)`` for pixel distance, or
    features ``(N, D)`` for feature distance (call twice for both).
    """
    if len(training) < 2:
        raise ValueError("need at least 2 training items for the real-real baseline")
    nn_index, nn_distance = nearest_neighbours(synthetic, training)
    _, real_nn = nearest_neighbours(training, training, exclude_self=True)
    threshold = float(np.percentile(real_nn, percentile))
    median = float(np.median(real_nn))
    ratio = nn_distance / median if median > 0 else np.where(nn_distance > 0, np.inf, 0.0)
    flagged = (nn_distance < threshold) | (ratio < ratio_threshold)
    return MemorisationResult(nn_index, nn_distance, ratio, flagged, real_nn, threshold)
