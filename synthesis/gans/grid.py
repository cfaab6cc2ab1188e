"""Sample grids as PNG: generated (or real) images, each next to a copy with its mask overlaid in colour.

Grids are for people watching a run: a fixed set of seeds per run, so successive grids show the same
samples improving. Images come in [-1, 1] with 1 (grayscale) or 3 (RGB) channels; masks are class indices.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

# Class 0 is background (never tinted); then distinct colours (Kelly/Glasbey-like, colour-blind-friendly first).
PALETTE = np.array(
    [
        (0, 0, 0),
        (230, 25, 75),
        (60, 180, 75),
        (0, 130, 200),
        (255, 225, 25),
        (245, 130, 48),
        (145, 30, 180),
        (70, 240, 240),
        (240, 50, 230),
        (210, 245, 60),
    ],
    dtype=np.float32,
)


def to_rgb_uint8(images: torch.Tensor) -> np.ndarray:
    """``(N, C, H, W)`` in [-1, 1], C in {1, 3} -> ``(N, H, W, 3)`` uint8 (grayscale repeated)."""
    x = images.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] != 3:
        x = x[:, :1].expand(-1, 3, -1, -1)  # unknown layout: show the first channel
    return x.permute(0, 2, 3, 1).numpy()


def overlay(rgb: np.ndarray, mask: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend class colours into ``rgb (H, W, 3)`` where ``mask (H, W)`` is not background."""
    colours = PALETTE[1 + (mask.astype(np.int64) - 1) % (len(PALETTE) - 1)]  # (H, W, 3); wraps past 9 classes
    out = rgb.astype(np.float32)
    fg = mask > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colours[fg]
    return out.round().astype(np.uint8)


def make_grid(images: torch.Tensor, masks: torch.Tensor | None = None, *, ncols: int | None = None) -> np.ndarray:
    """Tile samples into one ``(H', W', 3)`` uint8 array; with masks each tile is [image | image + overlay]."""
    rgb = to_rgb_uint8(images)  # (N, H, W, 3)
    n, h, w, _ = rgb.shape
    if masks is not None:
        m = masks.detach().cpu().numpy()
        rgb = np.concatenate([rgb, np.stack([overlay(rgb[i], m[i]) for i in range(n)])], axis=2)  # (N, H, 2W, 3)
    tile_w = rgb.shape[2]
    ncols = ncols or max(1, math.ceil(math.sqrt(n * h / tile_w)))  # roughly square overall
    nrows = math.ceil(n / ncols)
    gap = 2
    canvas = np.full(
        (nrows * (h + gap) - gap, ncols * (tile_w + gap) - gap, 3), 128, np.uint8
    )  # mid grey: visible on dark scans
    for i in range(n):
        r, c = divmod(i, ncols)
        canvas[r * (h + gap) : r * (h + gap) + h, c * (tile_w + gap) : c * (tile_w + gap) + tile_w] = rgb[i]
    return canvas


def save_grid(images: torch.Tensor, masks: torch.Tensor | None, path: str | Path, *, ncols: int | None = None) -> Path:
    """Write the grid of ``images`` (and ``masks``) to ``path`` as PNG (atomically: temp file then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(make_grid(images, masks, ncols=ncols)).save(tmp, format="PNG")
    os.replace(tmp, path)
    return path
