"""Differentiable augmentation of discriminator inputs, for GAN training on small medical sets.

Both methods transform what D sees, real and fake alike, in the D step and in the G step, with gradients
flowing through the transform to G. D then cannot memorise the few training images, while G is not
pushed to generate augmented images: an augmentation applied to both distributions leaves their match
as the optimum, as long as it is (in distribution) invertible.

* **DiffAugment** (Zhao, Liu, Lin, Zhu, Han, "Differentiable Augmentation for Data-Efficient GAN Training",
  NeurIPS 2020, arXiv 2006.10738, Sec. 3): ``color`` (brightness, saturation, contrast), ``translation`` (up
  to 1/8 of the size, padded), ``cutout`` (a square of half the size). Applied to every sample.
* **ADA** (Karras et al., "Training GANs with Limited Data", NeurIPS 2020, arXiv 2006.06676, Sec. 2-3): each
  transform applied to each sample with probability ``p``; :class:`AdaptiveAugment` tunes ``p`` from D's
  overconfidence on reals. Our pipeline is the part of ADA's "bgc" that suits anatomy: integer translation,
  isotropic scaling, brightness, contrast, saturation (RGB). x-flips and 90-degree rotations are off by
  default, because cardiac and abdominal anatomy is not mirror-symmetric (LV/RV, liver on one side) and
  scans come in a fixed orientation; they are options.

Channel roles (the reason not to use an RGB-only pipeline): ``x`` is ``(B, C, H, W)`` whose first
``img_channels`` are the image in [-1, 1] and the rest, if any, per-class mask probabilities (one-hot for
reals). Geometric transforms move all channels identically; intensity transforms touch only the image
channels (saturation only when there are 3); padding and cutout fill the image with 0 (as DiffAugment) and
the mask with the background class (channel ``img_channels``), so masks keep summing to 1; resampling uses
nearest-neighbour for mask channels so one-hot masks stay one-hot. For a conditional D (SPADE) concatenate
image and mask before augmenting and split them after, so both move together.

Determinism: every random draw comes from ``generator`` (on its device, then moved to ``x``'s), so the same
seed gives the same augmentation on CPU and GPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

DIFFAUGMENT_OPS = ("color", "translation", "cutout")
POLICIES = ("none", "diffaugment", "ada")
TRANSLATION_RATIO = 0.125  # DiffAugment and ADA: up to 1/8 of the image size
CUTOUT_RATIO = 0.5  # DiffAugment: a square of half the image size


# --- random draws -----------------------------------------------------------------------------------


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, x: Tensor) -> Tensor:
    device = generator.device if generator is not None else x.device
    return torch.rand(shape, generator=generator, device=device).to(device=x.device, dtype=x.dtype)


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, x: Tensor) -> Tensor:
    device = generator.device if generator is not None else x.device
    return torch.randn(shape, generator=generator, device=device).to(device=x.device, dtype=x.dtype)


def _randint(low: int, high: int, n: int, generator: torch.Generator | None, x: Tensor) -> Tensor:
    device = generator.device if generator is not None else x.device
    return torch.randint(low, high, (n,), generator=generator, device=device).to(x.device)


def _chosen(p: float | None, generator: torch.Generator | None, x: Tensor) -> Tensor | None:
    """Per-sample bool ``(B,)`` of which samples get a transform; None means all (DiffAugment)."""
    if p is None:
        return None
    return _rand((x.shape[0],), generator, x) < p


def _where(chosen: Tensor | None, new: Tensor, old: Tensor) -> Tensor:
    return new if chosen is None else torch.where(chosen.view(-1, 1, 1, 1), new, old)


def _fill(x: Tensor, img_channels: int) -> Tensor:
    """Per-channel fill value ``(1, C, 1, 1)``: 0 for the image, the background one-hot for the mask."""
    fill = torch.zeros(1, x.shape[1], 1, 1, dtype=x.dtype, device=x.device)
    if x.shape[1] > img_channels:
        fill[:, img_channels] = 1
    return fill


# --- intensity transforms: image channels only ---------------------------------------------------


def _split(x: Tensor, img_channels: int) -> tuple[Tensor, Tensor]:
    return x[:, :img_channels], x[:, img_channels:]


def brightness(x: Tensor, shift: Tensor, img_channels: int) -> Tensor:
    """Add ``shift (B,)`` to the image channels."""
    img, mask = _split(x, img_channels)
    return torch.cat([img + shift.view(-1, 1, 1, 1), mask], dim=1)


def saturation(x: Tensor, factor: Tensor, img_channels: int) -> Tensor:
    """Scale the image's deviation from its per-pixel grey level by ``factor (B,)``; grayscale is unchanged."""
    if img_channels != 3:
        return x  # one channel equals its own mean: saturation is the identity (and so skipped)
    img, mask = _split(x, img_channels)
    grey = img.mean(dim=1, keepdim=True)  # (B, 1, H, W)
    return torch.cat([(img - grey) * factor.view(-1, 1, 1, 1) + grey, mask], dim=1)


def contrast(x: Tensor, factor: Tensor, img_channels: int) -> Tensor:
    """Scale the image's deviation from its mean intensity by ``factor (B,)``."""
    img, mask = _split(x, img_channels)
    mean = img.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return torch.cat([(img - mean) * factor.view(-1, 1, 1, 1) + mean, mask], dim=1)


# --- geometric transforms: all channels identically --------------------------------------------------


def translate(x: Tensor, ty: Tensor, tx: Tensor, img_channels: int, max_shift: int | None = None) -> Tensor:
    """Shift each sample by integer ``(ty, tx)`` pixels ``(B,)`` each, filling uncovered pixels.

    A gather from a padded copy, so gradients reach every input pixel that stays in view. ``max_shift``
    (a bound on ``|ty|, |tx|``) saves reading the shifts back from the GPU.
    """
    B, C, H, W = x.shape
    s = int(max(ty.abs().max().item(), tx.abs().max().item())) if max_shift is None else max_shift
    if s == 0:
        return x
    padded = _fill(x, img_channels).expand(B, C, H + 2 * s, W + 2 * s).clone()  # (B, C, H+2s, W+2s)
    padded[:, :, s : s + H, s : s + W] = x
    rows = torch.arange(H, device=x.device)[None] + s - ty[:, None]  # (B, H) source row of each output row
    cols = torch.arange(W, device=x.device)[None] + s - tx[:, None]  # (B, W)
    b = torch.arange(B, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[b, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2)


def cutout(x: Tensor, cy: Tensor, cx: Tensor, size: int, img_channels: int) -> Tensor:
    """Fill a ``size`` x ``size`` square centred at ``(cy, cx)`` ``(B,)`` each (clipped at the borders)."""
    _, _, H, W = x.shape
    y = torch.arange(H, device=x.device)[None]  # (1, H)
    xx = torch.arange(W, device=x.device)[None]
    top, left = (cy - size // 2)[:, None], (cx - size // 2)[:, None]
    inside_y = (y >= top) & (y < top + size)  # (B, H)
    inside_x = (xx >= left) & (xx < left + size)  # (B, W)
    hole = (inside_y[:, :, None] & inside_x[:, None, :])[:, None]  # (B, 1, H, W)
    return torch.where(hole, _fill(x, img_channels), x)


def scale(x: Tensor, factor: Tensor, img_channels: int) -> Tensor:
    """Isotropic zoom by ``factor (B,)`` about the centre: bilinear for the image, nearest for masks.

    Reflection padding (as ADA) when zooming out, so no artificial border appears.
    """
    B = x.shape[0]
    theta = torch.zeros(B, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / factor  # output coords -> input coords
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
    img, mask = _split(x, img_channels)
    img = F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if mask.shape[1]:
        mask = F.grid_sample(mask, grid, mode="nearest", padding_mode="reflection", align_corners=False)
    return torch.cat([img, mask], dim=1)


def _rot90_per_sample(x: Tensor, k: Tensor) -> Tensor:
    """Rotate sample ``i`` by ``k[i]`` quarter turns (square images only)."""
    out = x
    for turns in (1, 2, 3):
        out = torch.where((k == turns).view(-1, 1, 1, 1), torch.rot90(x, turns, dims=(2, 3)), out)
    return out


# --- pipelines -----------------------------------------------------------------------------------


def diff_augment(
    x: Tensor,
    *,
    img_channels: int,
    ops: tuple[str, ...] = DIFFAUGMENT_OPS,
    p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """DiffAugment (Zhao et al. 2020) with the paper's strengths; ``p`` (if given) thins it per sample and op."""
    B, _, H, W = x.shape
    for op in ops:
        if op == "color":
            # Brightness U[-0.5, 0.5), saturation x U[0, 2), contrast x U[0.5, 1.5): the paper's ranges.
            x = _where(_chosen(p, generator, x), brightness(x, _rand((B,), generator, x) - 0.5, img_channels), x)
            x = _where(_chosen(p, generator, x), saturation(x, 2 * _rand((B,), generator, x), img_channels), x)
            x = _where(_chosen(p, generator, x), contrast(x, _rand((B,), generator, x) + 0.5, img_channels), x)
        elif op == "translation":
            sy, sx = int(H * TRANSLATION_RATIO + 0.5), int(W * TRANSLATION_RATIO + 0.5)
            ty, tx = _randint(-sy, sy + 1, B, generator, x), _randint(-sx, sx + 1, B, generator, x)
            chosen = _chosen(p, generator, x)
            if chosen is not None:
                ty, tx = ty * chosen, tx * chosen
            x = translate(x, ty, tx, img_channels, max(sy, sx))
        elif op == "cutout":
            size = int(min(H, W) * CUTOUT_RATIO + 0.5)
            cy, cx = _randint(0, H, B, generator, x), _randint(0, W, B, generator, x)
            x = _where(_chosen(p, generator, x), cutout(x, cy, cx, size, img_channels), x)
        else:
            raise ValueError(f"unknown DiffAugment op {op!r}; known: {DIFFAUGMENT_OPS}")
    return x


def ada_augment(
    x: Tensor,
    *,
    img_channels: int,
    p: float,
    generator: torch.Generator | None = None,
    xflip: bool = False,
    rot90: bool = False,
    geometric: bool = True,
    color: bool = True,
) -> Tensor:
    """ADA-style pipeline: each transform applied to each sample with probability ``p`` (Karras et al. 2020).

    Strengths follow ADA's defaults: translation up to 1/8 of the size (integer pixels), scale
    ``2^N(0, 0.2)``, brightness ``+N(0, 0.2)``, contrast ``x 2^N(0, 0.5)``, saturation ``x 2^N(0, 1)``.
    ``geometric``/``color`` switch the two groups (ADA's "bg" and "c" pipes).
    """
    if p <= 0:
        return x
    B, _, H, W = x.shape
    if geometric:
        x = _ada_geometric(x, img_channels=img_channels, p=p, generator=generator, xflip=xflip, rot90=rot90)
    if color:
        x = _where(_chosen(p, generator, x), brightness(x, 0.2 * _randn((B,), generator, x), img_channels), x)
        x = _where(_chosen(p, generator, x), contrast(x, torch.exp2(0.5 * _randn((B,), generator, x)), img_channels), x)
        x = _where(_chosen(p, generator, x), saturation(x, torch.exp2(_randn((B,), generator, x)), img_channels), x)
    return x


def _ada_geometric(
    x: Tensor, *, img_channels: int, p: float, generator: torch.Generator | None, xflip: bool, rot90: bool
) -> Tensor:
    B, _, H, W = x.shape
    if xflip:
        x = _where(_chosen(p, generator, x), x.flip(3), x)
    if rot90:
        if H != W:
            raise ValueError("90-degree rotations need square images")
        k = _randint(0, 4, B, generator, x) * _chosen(p, generator, x)
        x = _rot90_per_sample(x, k)
    sy, sx = int(H * TRANSLATION_RATIO + 0.5), int(W * TRANSLATION_RATIO + 0.5)
    chosen = _chosen(p, generator, x)
    ty, tx = _randint(-sy, sy + 1, B, generator, x) * chosen, _randint(-sx, sx + 1, B, generator, x) * chosen
    x = translate(x, ty, tx, img_channels, max(sy, sx))
    return _where(_chosen(p, generator, x), scale(x, torch.exp2(0.2 * _randn((B,), generator, x)), img_channels), x)


def augment(
    x: Tensor,
    *,
    img_channels: int,
    policy: str,
    p: float | None = None,
    generator: torch.Generator | None = None,
    xflip: bool = False,
    rot90: bool = False,
) -> Tensor:
    """Augment D's input ``x (B, C, H, W)`` (image channels first, then mask channels); same shape back.

    ``policy``: ``"none"``; ``"diffaugment"`` (color, translation, cutout; or a comma list of those ops, e.g.
    ``"translation,cutout"``), applied to every sample, or per sample with probability ``p`` if given;
    ``"ada"``, which needs ``p`` (usually :attr:`AdaptiveAugment.p`). ``xflip``/``rot90`` are ADA options.
    """
    if not 1 <= img_channels <= x.shape[1]:
        raise ValueError(f"img_channels must be in 1..{x.shape[1]}, not {img_channels}")
    if p is not None and not 0 <= p <= 1:
        raise ValueError(f"p must be in [0, 1], not {p}")
    if policy == "none":
        return x
    if policy == "ada":
        if p is None:
            raise ValueError("policy 'ada' needs the augmentation probability p")
        return ada_augment(x, img_channels=img_channels, p=p, generator=generator, xflip=xflip, rot90=rot90)
    ops = DIFFAUGMENT_OPS if policy == "diffaugment" else tuple(op.strip() for op in policy.split(","))
    if not set(ops) <= set(DIFFAUGMENT_OPS):
        raise ValueError(
            f"unknown augmentation policy {policy!r}; use one of {POLICIES} or a comma list of {DIFFAUGMENT_OPS}"
        )
    return diff_augment(x, img_channels=img_channels, ops=ops, p=p, generator=generator)


class AdaptiveAugment:
    """ADA's controller of the augmentation probability ``p`` (Karras et al. 2020, Sec. 3).

    Overfitting heuristic ``r_t = E[sign(D(x_real))]``: near 1 when D is sure about every real image. Call
    :meth:`update` once per D step with that step's D outputs on the (augmented) reals. Every ``interval``
    calls, ``p`` moves by ``sign(r_t - target) * batch * interval / (speed_kimg * 1000)``, so it can go from
    0 to 1 in ``speed_kimg`` thousand images, and is clamped to [0, 1].
    """

    def __init__(self, target: float = 0.6, interval: int = 4, speed_kimg: float = 500, p: float = 0.0) -> None:
        if interval < 1 or speed_kimg <= 0:
            raise ValueError("interval must be >= 1 and speed_kimg > 0")
        self.target, self.interval, self.speed_kimg = float(target), int(interval), float(speed_kimg)
        self.p = float(p)
        self.rt: float | None = None  # last heuristic value, for logging
        self._sign_sum, self._count, self._calls = 0.0, 0, 0

    def update(self, d_real_signs: Tensor, batch_size: int) -> float:
        """Accumulate ``sign(D(real))`` (logits are fine: the sign is taken here) and adjust ``p``; return ``p``."""
        signs = torch.sign(d_real_signs.detach()).flatten()
        self._sign_sum += float(signs.sum())
        self._count += signs.numel()
        self._calls += 1
        if self._calls >= self.interval:
            self.rt = self._sign_sum / max(self._count, 1)
            step = batch_size * self.interval / (self.speed_kimg * 1000)
            self.p = min(1.0, max(0.0, self.p + math.copysign(step, self.rt - self.target) * (self.rt != self.target)))
            self._sign_sum, self._count, self._calls = 0.0, 0, 0
        return self.p

    def state_dict(self) -> dict:
        return {
            "p": self.p,
            "rt": self.rt,
            "target": self.target,
            "interval": self.interval,
            "speed_kimg": self.speed_kimg,
            "sign_sum": self._sign_sum,
            "count": self._count,
            "calls": self._calls,
        }

    def load_state_dict(self, state: dict) -> None:
        self.p, self.rt = float(state["p"]), state["rt"]
        self.target, self.interval, self.speed_kimg = (
            float(state["target"]),
            int(state["interval"]),
            float(state["speed_kimg"]),
        )
        self._sign_sum, self._count, self._calls = float(state["sign_sum"]), int(state["count"]), int(state["calls"])
