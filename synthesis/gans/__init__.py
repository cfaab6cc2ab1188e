"""Pure PyTorch GANs of the study (never imports Django): registry, networks, losses, augmentation.

Modules: :mod:`.registry` (:class:`ModelConfig`, :class:`GanSpec`, :data:`GANS`), :mod:`.layers`,
:mod:`.dcgan` (DCGAN, LSGAN, WGAN, WGAN-GP, HingeGAN), :mod:`.spade`, :mod:`.stylegan`, :mod:`.losses`,
:mod:`.augment`, :mod:`.trainer`.
"""

from .registry import (
    DEFAULT_PRESET,
    GANS,
    GanSpec,
    ModelConfig,
    build_gan,
    get_gan,
    make_preset,
    register,
    validate_config,
)

__all__ = [
    "DEFAULT_PRESET",
    "GANS",
    "GanSpec",
    "ModelConfig",
    "build_gan",
    "get_gan",
    "make_preset",
    "register",
    "validate_config",
]
