"""The GAN registry: one :class:`GanSpec` per model of the study, looked up by name.

Skandarani, Jodoin, Lalande, "GANs for Medical Image Synthesis: An Empirical Study", J. Imaging 2023
(arXiv 2105.05318) compare DCGAN, LSGAN, WGAN, WGAN-GP, HingeGAN, SPADE and StyleGAN. Each entry here
says how to build the networks (:class:`ModelConfig` -> ``(G, D)``), which adversarial loss of
:data:`synthesis.gans.losses.LOSSES` trains them, and the training hyperparameters the original authors
recommend (``preset``). The registry follows timm's ``@register`` pattern: every registered model gets a
parametrized CPU smoke test (``tests/ml/test_gans.py``).

Network contracts (every builder honours them):

* ``G(z: (B, z_dim), cond: (B, n_classes, H, W) | None) -> (B, out_channels, H, W)``. The first
  ``img_channels`` are the image in [-1, 1] (tanh). For unconditional GANs with ``n_classes > 0`` the next
  ``n_classes`` channels are per-pixel class probabilities (softmax; one-hot with straight-through gradients
  unless ``cfg.extra["mask_output"] == "soft"``, see :func:`.layers.image_mask_output`), so one sample is an
  image plus its segmentation. A conditional G (``spec.conditional``, SPADE) takes the one-hot mask as ``cond`` and returns
  only the image. ``G.z_dim`` and ``G.cfg`` are set.
* ``D(x: (B, C, H, W), cond=None) -> (B,)`` logits or critic values. Unconditional: ``C = out_channels``
  (real masks fed one-hot); conditional: ``C = img_channels`` and the mask comes as ``cond``.

Builtin models live in :mod:`.dcgan`, :mod:`.spade` and :mod:`.stylegan`; they register themselves when
imported, and the registry imports them on first use (so ``import synthesis.gans.registry`` stays cheap).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from torch import nn

MIN_RESOLUTION, MAX_RESOLUTION = 32, 256
IMG_CHANNELS = (1, 3)  # MRI/CT slices are grayscale, fundus photos RGB

# Every preset carries every key, so a trainer can read ``preset[key]`` without knowing the model.
# Neutral values switch a feature off (0 weight, None clip, "none" augmentation).
DEFAULT_PRESET: dict = {
    "optimizer": "adam",  # "adam" | "rmsprop"
    "lr_g": 2e-4,
    "lr_d": 2e-4,
    "betas": (0.5, 0.999),  # Adam only
    "n_critic": 1,  # D steps per G step
    "batch_size": 64,
    "weight_clip": None,  # WGAN: clamp every D parameter to [-c, c] after each D step
    "gp_lambda": 0.0,  # WGAN-GP: weight of losses.gradient_penalty
    "r1_gamma": 0.0,  # R1 weight: D loss += r1_gamma / 2 * losses.r1_penalty (lazy, every r1_interval)
    "r1_interval": 16,
    "pl_weight": 0.0,  # StyleGAN2 path-length regularisation
    "ema_kimg": 0.0,  # 0 = no G_ema; else half-life of the G_ema average in thousands of images
    "ema_rampup": None,
    "style_mixing": 0.0,
    "feature_matching": 0.0,  # SPADE: weight of losses.feature_matching_loss (needs D.forward_with_features)
    "augment": "diffaugment",  # "diffaugment" | "ada" | "none"  (see augment.py)
    "ada_target": 0.6,
    "z_dim": 128,
    "base_channels": 64,
}


def make_preset(**overrides) -> dict:
    """:data:`DEFAULT_PRESET` with ``overrides`` applied (new keys are allowed: model-specific knobs)."""
    return {**DEFAULT_PRESET, **overrides}


@dataclass(frozen=True)
class ModelConfig:
    """What a builder needs to size the networks; architecture-specific knobs go in ``extra``."""

    resolution: int  # 32..256, power of two
    img_channels: int  # 1 (MRI/CT) or 3 (fundus)
    n_classes: int = 0  # mask classes INCLUDING background (0 = image-only set; else >= 2)
    z_dim: int = 128
    base_channels: int = 64  # width multiplier; tests use tiny values like 8
    extra: dict = field(default_factory=dict)  # e.g. stylegan mapping layers, spade discriminator scales

    @property
    def out_channels(self) -> int:
        return self.img_channels + self.n_classes


@dataclass(frozen=True)
class GanSpec:
    """One registered GAN: builder, loss key, conditioning and the authors' recommended training preset."""

    name: str  # registry key
    title: str  # e.g. "WGAN-GP"
    build: Callable[[ModelConfig], tuple[nn.Module, nn.Module]]  # returns (G, D)
    loss: str  # key into losses.LOSSES
    conditional: bool = False  # True only for spade: G and D take the one-hot mask as condition
    preset: dict = field(default_factory=make_preset)
    description: str = ""


_SPECS: dict[str, GanSpec] = {}
_BUILTIN_MODULES = ("dcgan", "spade", "stylegan")
# Modules that may legitimately be absent (written by someone else, possibly later).
_OPTIONAL_MODULES = frozenset({"stylegan"})
_loaded = False


def _load_builtin() -> None:
    """Import the builtin model modules once; their import registers their specs."""
    global _loaded
    if _loaded:
        return
    _loaded = True  # set first: the modules import this one back
    try:
        for module in _BUILTIN_MODULES:
            qualified = f"{__package__}.{module}"
            try:
                importlib.import_module(qualified)
            except ModuleNotFoundError as exc:
                # Only the optional module itself being absent is tolerated; a missing dependency
                # *inside* it (exc.name is then that dependency) is a real error.
                if module in _OPTIONAL_MODULES and exc.name == qualified:
                    continue
                raise
    except BaseException:
        _loaded = False  # let the next access retry and raise the same error again
        raise


class _LazyRegistry(Mapping[str, GanSpec]):
    """Read-only view of the registered specs that imports the builtin modules on first access."""

    def __getitem__(self, name: str) -> GanSpec:
        _load_builtin()
        return _SPECS[name]

    def __iter__(self) -> Iterator[str]:
        _load_builtin()
        return iter(list(_SPECS))

    def __len__(self) -> int:
        _load_builtin()
        return len(_SPECS)

    def __repr__(self) -> str:
        return f"GANS({sorted(self)})"


GANS: Mapping[str, GanSpec] = _LazyRegistry()


def register(spec: GanSpec) -> GanSpec:
    """Add ``spec`` under ``spec.name``; a second spec with the same name is an error, not an override."""
    existing = _SPECS.get(spec.name)
    if existing is not None and existing is not spec:
        raise ValueError(f"GAN {spec.name!r} is already registered")
    from .losses import LOSSES  # late: losses imports torch only, but keep registry import-light

    if spec.loss not in LOSSES:
        raise ValueError(f"GAN {spec.name!r}: unknown loss {spec.loss!r}; known: {sorted(LOSSES)}")
    _SPECS[spec.name] = spec
    return spec


def get_gan(name: str) -> GanSpec:
    """The spec registered as ``name``; ``KeyError`` naming the known GANs otherwise."""
    _load_builtin()
    try:
        return _SPECS[name]
    except KeyError:
        raise KeyError(f"unknown GAN {name!r}; known: {', '.join(sorted(_SPECS))}") from None


def validate_config(name: str, cfg: ModelConfig) -> None:
    """Raise ``ValueError`` (``KeyError`` for an unknown name) if GAN ``name`` cannot be built for ``cfg``."""
    spec = get_gan(name)
    res = cfg.resolution
    if not isinstance(res, int) or res < MIN_RESOLUTION or res > MAX_RESOLUTION or res & (res - 1):
        raise ValueError(
            f"{spec.title}: resolution must be a power of two from {MIN_RESOLUTION} to {MAX_RESOLUTION}, not {res!r}"
        )
    if cfg.img_channels not in IMG_CHANNELS:
        raise ValueError(
            f"{spec.title}: img_channels must be 1 (grayscale MRI/CT) or 3 (RGB), not {cfg.img_channels!r}"
        )
    if cfg.n_classes < 0 or cfg.n_classes == 1:
        raise ValueError(
            f"{spec.title}: n_classes counts mask classes including background, so it is 0 (no masks) "
            f"or at least 2, not {cfg.n_classes!r}"
        )
    if spec.conditional and cfg.n_classes == 0:
        raise ValueError(
            f"{spec.title} generates an image from a segmentation mask, so it needs an image set with masks "
            "(n_classes >= 2); this set has none"
        )
    mask_output = cfg.extra.get("mask_output", "hard")
    if mask_output not in ("hard", "soft"):
        raise ValueError(f"{spec.title}: extra['mask_output'] must be 'hard' or 'soft', not {mask_output!r}")
    if cfg.z_dim < 1 or cfg.base_channels < 1:
        raise ValueError(
            f"{spec.title}: z_dim and base_channels must be positive, not {cfg.z_dim}, {cfg.base_channels}"
        )


def build_gan(name: str, cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """Validate ``cfg`` for GAN ``name`` and build its ``(G, D)``."""
    validate_config(name, cfg)
    return get_gan(name).build(cfg)
