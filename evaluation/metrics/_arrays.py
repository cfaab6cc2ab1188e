"""Input conversion shared by the metrics: numpy arrays or torch tensors (any device) -> numpy."""

from __future__ import annotations

import numpy as np
import torch


def to_numpy(x: np.ndarray | torch.Tensor, dtype: type | None = None) -> np.ndarray:
    """A numpy array of ``x``; torch tensors are detached and copied from their device (CUDA included)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)
