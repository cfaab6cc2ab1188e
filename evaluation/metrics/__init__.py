"""Pure PyTorch/NumPy/SciPy metrics for generated medical images (never imports Django).

Modules: :mod:`.features` (FID-Inception, pytorch-fid protocol), :mod:`.fid`, :mod:`.kid`, :mod:`.prdc`,
:mod:`.swd`, :mod:`.memorisation`, :mod:`.dice`, :mod:`.unet`.

The registry maps a metric name to a :class:`Metric`: a function ``fn(reference, candidate, **options) ->
dict[str, float]`` plus what it takes (``inputs``):

* ``"features"``: two feature matrices ``(N, D)`` (e.g. :func:`.features.extract_features` output), real first;
* ``"images"``: two image sets ``(N, C, H, W)`` in [0, 1], real (or training) first;
* ``"masks"``: ground-truth and predicted label maps ``(N, H, W)``, ground truth first; option ``n_classes``.

Results are flat ``{name: float}`` dicts whose keys carry the metric (``fid``, ``kid_mean`` ...), ready to store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import dice as _dice
from . import fid as _fid
from . import kid as _kid
from . import memorisation as _memorisation
from . import prdc as _prdc
from . import swd as _swd

INPUT_KINDS = ("features", "images", "masks")


@dataclass(frozen=True)
class Metric:
    """A registered metric: the function, what it takes, and what to record about how it was computed."""

    name: str
    fn: Callable[..., dict[str, float]]
    inputs: str
    description: str = ""
    protocol: dict[str, object] = field(default_factory=dict)


METRICS: dict[str, Metric] = {}


def register(
    name: str, *, inputs: str, description: str = "", protocol: dict[str, object] | None = None
) -> Callable[[Callable[..., dict[str, float]]], Callable[..., dict[str, float]]]:
    """Decorator adding ``fn(reference, candidate, **options) -> dict[str, float]`` to :data:`METRICS`."""
    if inputs not in INPUT_KINDS:
        raise ValueError(f"inputs must be one of {INPUT_KINDS}, not {inputs!r}")

    def decorator(fn: Callable[..., dict[str, float]]) -> Callable[..., dict[str, float]]:
        if name in METRICS:
            raise ValueError(f"metric {name!r} is already registered")
        METRICS[name] = Metric(name, fn, inputs, description or (fn.__doc__ or "").strip(), dict(protocol or {}))
        return fn

    return decorator


def get_metric(name: str) -> Metric:
    """The registered metric ``name``; KeyError listing the known names otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {sorted(METRICS)}") from None


# ---------------------------------------------------------------------------------------------------------------
# Registered metrics
# ---------------------------------------------------------------------------------------------------------------


@register("fid", inputs="features", protocol={"statistics": "float64, np.cov ddof=1", "sqrt": "eigh"})
def fid_metric(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    """Fréchet distance between Gaussian fits of the two feature sets (Heusel et al. 2017)."""
    return {"fid": _fid.fid_from_features(real, fake)}


@register("kid", inputs="features", protocol={"kernel": "(x.y/D + 1)^3", "subsets": 100, "subset_size": 1000})
def kid_metric(
    real: np.ndarray, fake: np.ndarray, *, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Unbiased MMD^2 with a cubic polynomial kernel, mean and std over random subsets (Bińkowski et al. 2018)."""
    mean, std = _kid.kernel_inception_distance(real, fake, subsets=subsets, subset_size=subset_size, seed=seed)
    return {"kid_mean": mean, "kid_std": std}


@register("prdc", inputs="features", protocol={"k": 5})
def prdc_metric(real: np.ndarray, fake: np.ndarray, *, k: int = 5) -> dict[str, float]:
    """Precision, recall, density, coverage (Naeem et al. 2020)."""
    return _prdc.prdc(real, fake, k=k)


@register("swd", inputs="images", protocol={"patch": 7, "projections": "4 x 128", "min_resolution": 16})
def swd_metric(real: np.ndarray, fake: np.ndarray, *, patches_per_image: int = 128, seed: int = 0) -> dict[str, float]:
    """Sliced Wasserstein distance on Laplacian-pyramid 7x7 patches, per level and averaged (Karras et al. 2018)."""
    return _swd.sliced_wasserstein_distance(real, fake, patches_per_image=patches_per_image, seed=seed)


def _memorisation_numbers(training: np.ndarray, synthetic: np.ndarray, percentile: float, ratio: float) -> dict:
    result = _memorisation.memorisation_check(synthetic, training, percentile=percentile, ratio_threshold=ratio)
    s = result.summary()
    return {
        "n_flagged": float(s["n_flagged"]),
        "fraction_flagged": s["fraction_flagged"],
        "median_nn_distance": s["median_synthetic_nn_distance"],
        "median_real_nn_distance": s["median_real_nn_distance"],
        "min_nn_ratio": float(result.ratio.min()) if len(result.ratio) else float("nan"),
    }


@register("memorisation_pixel", inputs="images", protocol={"distance": "pixel L2", "percentile": 1, "ratio": 0.1})
def memorisation_pixel_metric(
    training: np.ndarray, synthetic: np.ndarray, *, percentile: float = 1.0, ratio_threshold: float = 0.1
) -> dict[str, float]:
    """Synthetic images closer (pixel L2) to a training image than real images are to each other."""
    return _memorisation_numbers(training, synthetic, percentile, ratio_threshold)


@register("memorisation_features", inputs="features", protocol={"distance": "feature L2", "percentile": 1})
def memorisation_features_metric(
    training: np.ndarray, synthetic: np.ndarray, *, percentile: float = 1.0, ratio_threshold: float = 0.1
) -> dict[str, float]:
    """Synthetic images closer (feature L2) to a training image than real images are to each other."""
    return _memorisation_numbers(training, synthetic, percentile, ratio_threshold)


@register("dice", inputs="masks", protocol={"empty_both": "NaN, excluded", "empty_gt": "0", "mean": "foreground"})
def dice_metric(gt: np.ndarray, pred: np.ndarray, *, n_classes: int) -> dict[str, float]:
    """Per-class Dice (nnU-Net conventions) and the foreground mean."""
    res = _dice.dice_scores(pred, gt, n_classes)
    out = {f"dice_class_{c}": float(v) for c, v in enumerate(res["per_class"], start=1)}
    return out | {"dice_foreground_mean": res["foreground_mean"]}


@register("hd95", inputs="masks", protocol={"unit": "mm", "empty": "NaN, excluded"})
def hd95_metric(
    gt: np.ndarray, pred: np.ndarray, *, n_classes: int, spacing: tuple[float, ...] | None = None
) -> dict[str, float]:
    """95th-percentile symmetric surface distance per class (mm), and the foreground mean."""
    res = _dice.hd95_scores(pred, gt, n_classes, spacing)
    out = {f"hd95_class_{c}": float(v) for c, v in enumerate(res["per_class"], start=1)}
    return out | {"hd95_foreground_mean": res["foreground_mean"]}


__all__ = ["INPUT_KINDS", "METRICS", "Metric", "get_metric", "register"]
