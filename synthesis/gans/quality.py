"""A weight-free training-time quality score: ProGAN's sliced Wasserstein distance (SWD).

Karras et al., "Progressive Growing of GANs", ICLR 2018 (arXiv 1710.10196, Sec. 5 and appendix D). Needs no
downloaded network, so every snapshot of every run gets a number, even on an offline CPU machine. It is a
progress and model-selection signal for the trainer ("best" checkpoint), not the study's reported metric (the
evaluation app computes FID, KID etc. on canonical images).

1. Laplacian pyramid per image set (5x5 binomial filter, reflect padding), levels from full size down to
   ``min_resolution``; the last level is the low-pass residual.
2. ``patches_per_image`` random 7x7 neighbourhoods (all channels) per image and level.
3. Per set and level, standardise the descriptors per channel.
4. Project both sets on random unit directions, sort, average |difference|; mean over ``repeats`` draws.

Deterministic for a given ``seed`` (its own generator; the global RNGs are untouched).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64)


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    c = x.shape[1]
    k = (torch.outer(_BINOMIAL, _BINOMIAL) * (gain / 256.0)).to(x).expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k, groups=c)


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """``(N, C, H, W)`` -> ``levels`` band-pass images, finest first; the last is the low-pass residual."""
    out = []
    for _ in range(levels - 1):
        down = _blur(x)[:, :, ::2, ::2]
        up = torch.zeros_like(x)
        up[:, :, ::2, ::2] = down
        out.append(x - _blur(up, gain=4.0))  # gain 4 restores the mean after zero insertion
        x = down
    return out + [x]


def _descriptors(level: torch.Tensor, per_image: int, g: torch.Generator, size: int = 7) -> torch.Tensor:
    """Random ``size`` x ``size`` patches, standardised per channel: ``(N * per_image, C * size * size)``."""
    n, c, h, w = level.shape
    half = size // 2
    idx = torch.arange(n).repeat_interleave(per_image)
    ys = torch.randint(half, h - half, (len(idx),), generator=g)
    xs = torch.randint(half, w - half, (len(idx),), generator=g)
    offs = torch.arange(size) - half
    rows = (ys[:, None] + offs)[:, :, None]  # (P, size, 1)
    cols = (xs[:, None] + offs)[:, None, :]  # (P, 1, size)
    patches = level.permute(0, 2, 3, 1)[idx[:, None, None], rows, cols].permute(0, 3, 1, 2)  # (P, C, size, size)
    patches = patches - patches.mean(dim=(0, 2, 3), keepdim=True)
    std = patches.std(dim=(0, 2, 3), keepdim=True)
    patches = patches / torch.where(std > 0, std, torch.ones_like(std))  # a constant channel stays 0, not NaN
    return patches.flatten(1)


def sliced_wasserstein_distance(
    images1: torch.Tensor,
    images2: torch.Tensor,
    *,
    patches_per_image: int = 64,
    repeats: int = 4,
    projections: int = 128,
    min_resolution: int = 16,
    seed: int = 0,
) -> dict[str, float]:
    """SWD per pyramid level (``swd_<res>``, finest first) and their mean ``swd_avg``; lower is better.

    ``images1``/``images2``: ``(N, C, H, W)`` with equal C, H, W, any intensity range (descriptors are
    standardised). Both sets should have the same N (the sorted comparison then uses every descriptor).
    """
    x1, x2 = images1.detach().cpu().double(), images2.detach().cpu().double()
    if x1.ndim != 4 or x1.shape[1:] != x2.shape[1:]:
        raise ValueError(f"need two image sets (N, C, H, W) of equal C, H, W, got {tuple(x1.shape)}, {tuple(x2.shape)}")
    resolutions = [x1.shape[-1]]
    while resolutions[-1] // 2 >= min_resolution:
        resolutions.append(resolutions[-1] // 2)
    g = torch.Generator().manual_seed(seed)
    out: dict[str, float] = {}
    levels1 = laplacian_pyramid(x1, len(resolutions))
    levels2 = laplacian_pyramid(x2, len(resolutions))
    for res, level1, level2 in zip(resolutions, levels1, levels2, strict=True):
        d1 = _descriptors(level1, patches_per_image, g)
        d2 = _descriptors(level2, patches_per_image, g)
        n = min(len(d1), len(d2))
        d1, d2 = d1[torch.randperm(len(d1), generator=g)[:n]], d2[torch.randperm(len(d2), generator=g)[:n]]
        dists = []
        for _ in range(repeats):
            dirs = torch.randn(d1.shape[1], projections, generator=g, dtype=torch.float64)
            dirs = dirs / dirs.norm(dim=0, keepdim=True)
            p1, _ = torch.sort(d1 @ dirs, dim=0)  # (P, projections)
            p2, _ = torch.sort(d2 @ dirs, dim=0)
            dists.append((p1 - p2).abs().mean())
        out[f"swd_{res}"] = float(torch.stack(dists).mean())
    out["swd_avg"] = sum(out.values()) / len(out)
    return out
