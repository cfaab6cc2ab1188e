"""Building blocks shared by the GAN networks: normalisation and spectral-norm factories, DCGAN weight
initialisation, the image+mask output head, and the checks of the G/D input contracts."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

NORMS = ("batch", "instance", "layer", "none")


def norm2d(kind: str, channels: int, *, affine: bool = True) -> nn.Module:
    """A 2D normalisation layer by name.

    ``layer`` is GroupNorm with one group, i.e. LayerNorm over (C, H, W) with a per-channel affine, the
    normalisation WGAN-GP recommends for critics (Gulrajani et al. 2017, Sec. 4): it never mixes samples,
    so per-sample gradient penalties stay valid.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=affine)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=affine)
    if kind == "layer":
        return nn.GroupNorm(1, channels, affine=affine)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORMS}, not {kind!r}")


def maybe_sn(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap ``module`` in spectral normalisation (Miyato et al., ICLR 2018) when ``enabled``."""
    return spectral_norm(module) if enabled else module


def reinit_weight_(m: nn.Module, init: Callable[[Tensor], object]) -> None:
    """Re-initialise ``m.weight`` in place with ``init``, keeping spectral norm correct.

    Spectral norm estimates the weight's largest singular value by power iteration from vectors set up
    when it was applied; re-initialising the underlying weight leaves them stale, so sigma comes out wrong
    (about 25% low per layer, measured) until the one-step-per-forward iteration catches up. Removing and
    re-applying the parametrisation recomputes them for the new weight.
    """
    if parametrize.is_parametrized(m, "weight"):
        parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
        init(m.weight)
        spectral_norm(m)
    else:
        init(m.weight)


def dcgan_init_(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al., ICLR 2016, Sec. 4): conv weights N(0, 0.02), norm gains N(1, 0.02)."""
    for m in list(module.modules()):  # a list: re-applying spectral norm edits the module tree
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            reinit_weight_(m, lambda w: nn.init.normal_(w, 0.0, 0.02))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.InstanceNorm2d | nn.GroupNorm) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def log2_int(n: int) -> int:
    """``log2(n)`` for a power of two, else ``ValueError``."""
    k = int(round(math.log2(n))) if n > 0 else -1
    if k < 0 or 2**k != n:
        raise ValueError(f"{n} is not a power of two")
    return k


MASK_OUTPUTS = ("hard", "soft")


def mask_output_mode(cfg) -> str:
    """``cfg.extra["mask_output"]``: ``"hard"`` (default) or ``"soft"``; see :func:`image_mask_output`."""
    mode = cfg.extra.get("mask_output", "hard")
    if mode not in MASK_OUTPUTS:
        raise ValueError(f"mask_output must be one of {MASK_OUTPUTS}, not {mode!r}")
    return mode


def image_mask_output(logits: Tensor, img_channels: int, mode: str = "hard") -> Tensor:
    """Map raw G output ``(B, img + n_classes, H, W)`` to an image in [-1, 1] plus per-pixel class probabilities.

    tanh on the image channels; softmax over the class channels (if any), so every pixel's probabilities
    sum to 1 like a real one-hot mask. ``mode="hard"`` returns the one-hot argmax in the forward pass with
    the softmax's gradient in the backward pass (straight-through estimator, Bengio et al. 2013,
    arXiv 1308.3432). Why: real masks reach D exactly one-hot, so soft fake masks are told apart by their
    in-between values alone and D wins at once; on a toy disc set (32 px, DCGAN, 800 steps) soft masks
    mode-collapsed while straight-through ones gave varied discs with aligned masks.
    """
    image = torch.tanh(logits[:, :img_channels])  # (B, img, H, W)
    if logits.shape[1] == img_channels:
        return image
    probs = torch.softmax(logits[:, img_channels:], dim=1)  # (B, n_classes, H, W)
    if mode == "hard":
        one_hot = torch.zeros_like(probs).scatter_(1, probs.argmax(1, keepdim=True), 1.0)
        probs = one_hot + (probs - probs.detach())  # value: exactly one-hot; gradient: softmax's
    elif mode != "soft":
        raise ValueError(f"mask_output must be one of {MASK_OUTPUTS}, not {mode!r}")
    return torch.cat([image, probs], dim=1)


def check_z(z: Tensor, z_dim: int) -> None:
    if z.ndim != 2 or z.shape[1] != z_dim:
        raise ValueError(f"z must have shape (B, {z_dim}), not {tuple(z.shape)}")


def check_cond(cond: Tensor | None, *, n_classes: int, resolution: int, batch: int, conditional: bool) -> None:
    """Raise ``ValueError`` unless ``cond`` fits the network: a one-hot mask for conditional ones, None otherwise."""
    if not conditional:
        if cond is not None:
            raise ValueError("this GAN is unconditional: pass cond=None (masks are generated as output channels)")
        return
    expected = (batch, n_classes, resolution, resolution)
    if cond is None or tuple(cond.shape) != expected:
        got = None if cond is None else tuple(cond.shape)
        raise ValueError(f"cond must be a one-hot mask of shape {expected}, not {got}")
