"""Sliced Wasserstein distance between Laplacian-pyramid patch descriptors (ProGAN's SWD).

Karras, Aila, Laine, Lehtinen, "Progressive Growing of GANs", ICLR 2018 (arXiv 1710.10196, §5 and appendix D);
reference code ``tkarras/progressive_growing_of_gans:metrics/sliced_wasserstein.py``. Per image set:

1. Build a Laplacian pyramid (5x5 binomial filter, mirror padding) with one level per resolution from the
   full size down to 16 px (``min_resolution``); the last level is the low-pass residual.
2. Per level, cut ``patches_per_image`` random 7x7 neighbourhoods (all channels) from each image.
3. Normalise the descriptors of each set and level per channel (mean 0, std 1 over descriptors and pixels).
4. Per level, project both sets on ``projections_per_repeat`` random unit directions, sort each projection and
   average the absolute differences; average over ``repeats`` draws of directions (4 x 128 = 512 projections).

Works for any number of channels (descriptor length C*49). Deterministic for a given ``seed``. Values are raw;
ProGAN's tables show them x 10^3. Identical sets give small positive values (patches are sampled at random
positions independently per set), noise against structure gives large ones. When the sets differ in size, the
larger set's descriptors are subsampled to the smaller count (the sorted comparison needs equal counts).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ._arrays import to_numpy

_BINOMIAL = np.array([1, 4, 6, 4, 1], dtype=np.float64)
GAUSSIAN_5x5 = np.outer(_BINOMIAL, _BINOMIAL) / 256.0


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Depthwise 5x5 binomial filter with mirror padding (scipy.ndimage 'mirror' == torch 'reflect')."""
    c = x.shape[1]
    w = torch.as_tensor(GAUSSIAN_5x5 * gain, dtype=x.dtype).expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), w, groups=c)


def _pyr_down(x: torch.Tensor) -> torch.Tensor:
    return _blur(x)[:, :, ::2, ::2]


def _pyr_up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    b, c, h, w = x.shape
    up = x.new_zeros(b, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    # Gain 4 restores the mean after zero insertion; crop back for odd sizes.
    return _blur(up, gain=4.0)[:, :, : size[0], : size[1]]


def laplacian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid of ``(N, C, H, W)``: ``levels`` band-pass images, finest first, last = low-pass."""
    pyramid = [images]
    for _ in range(1, levels):
        down = _pyr_down(pyramid[-1])
        pyramid[-1] = pyramid[-1] - _pyr_up(down, pyramid[-1].shape[-2:])
        pyramid.append(down)
    return pyramid


def _patches(level: torch.Tensor, per_image: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Random ``size`` x ``size`` neighbourhoods: ``(N * per_image, C, size, size)``."""
    n, c, h, w = level.shape
    half = size // 2
    if h < size or w < size:
        raise ValueError(f"pyramid level {h}x{w} is smaller than the {size}x{size} patch")
    arr = level.numpy()
    img = np.repeat(np.arange(n), per_image)
    ys = rng.integers(half, h - half, size=len(img))
    xs = rng.integers(half, w - half, size=len(img))
    offs = np.arange(size) - half
    rows = (ys[:, None] + offs[None, :])[:, :, None]  # (P, size, 1)
    cols = (xs[:, None] + offs[None, :])[:, None, :]  # (P, 1, size)
    # (P, size, size, C) by fancy indexing, then channels first like ProGAN.
    patches = arr.transpose(0, 2, 3, 1)[img[:, None, None], rows, cols]
    return patches.transpose(0, 3, 1, 2)


def _normalise(desc: np.ndarray) -> np.ndarray:
    """Per-channel standardisation over descriptors and pixels, then flatten to ``(P, C*size*size)``."""
    desc = desc - desc.mean(axis=(0, 2, 3), keepdims=True)
    std = desc.std(axis=(0, 2, 3), keepdims=True)
    desc = desc / np.where(std > 0, std, 1.0)  # a constant channel stays 0 instead of NaN
    return desc.reshape(len(desc), -1)


def sliced_wasserstein(
    a: np.ndarray, b: np.ndarray, *, repeats: int, projections_per_repeat: int, rng: np.random.Generator
) -> float:
    """Mean over random unit directions of the 1D Wasserstein-1 distance between equal-size samples a, b."""
    results = []
    for _ in range(repeats):
        dirs = rng.standard_normal((a.shape[1], projections_per_repeat))
        dirs /= np.sqrt((dirs**2).sum(axis=0, keepdims=True))
        proj_a = np.sort(a @ dirs, axis=0)  # (P, projections)
        proj_b = np.sort(b @ dirs, axis=0)
        results.append(np.abs(proj_a - proj_b).mean())
    return float(np.mean(results))


def _resolutions(height: int, min_resolution: int) -> list[int]:
    res, out = height, []
    while res >= min_resolution:
        out.append(res)
        res //= 2
    return out or [height]


def sliced_wasserstein_distance(
    images1: np.ndarray | torch.Tensor,
    images2: np.ndarray | torch.Tensor,
    *,
    patches_per_image: int = 128,
    patch_size: int = 7,
    repeats: int = 4,
    projections_per_repeat: int = 128,
    min_resolution: int = 16,
    seed: int = 0,
) -> dict[str, float]:
    """SWD per pyramid level (``swd_<resolution>``, finest first) and their mean ``swd_avg``.

    ``images1``/``images2``: ``(N, C, H, W)`` in [0, 1] with equal C, H, W.
    """
    x1 = torch.from_numpy(to_numpy(images1, np.float64))
    x2 = torch.from_numpy(to_numpy(images2, np.float64))
    if x1.ndim != 4 or x1.shape[1:] != x2.shape[1:]:
        raise ValueError(f"need two image sets (N, C, H, W) of equal C, H, W, got {x1.shape} and {x2.shape}")
    resolutions = _resolutions(min(x1.shape[-2:]), min_resolution)
    rng = np.random.default_rng(seed)
    pyr1 = laplacian_pyramid(x1, len(resolutions))
    pyr2 = laplacian_pyramid(x2, len(resolutions))
    out: dict[str, float] = {}
    for res, level1, level2 in zip(resolutions, pyr1, pyr2, strict=True):
        d1 = _normalise(_patches(level1, patches_per_image, patch_size, rng))
        d2 = _normalise(_patches(level2, patches_per_image, patch_size, rng))
        n = min(len(d1), len(d2))
        if len(d1) > n:
            d1 = d1[rng.choice(len(d1), n, replace=False)]
        if len(d2) > n:
            d2 = d2[rng.choice(len(d2), n, replace=False)]
        out[f"swd_{res}"] = sliced_wasserstein(
            d1, d2, repeats=repeats, projections_per_repeat=projections_per_repeat, rng=rng
        )
    out["swd_avg"] = float(np.mean(list(out.values())))
    return out
