"""KID and FID of a GAN's snapshots while it trains, offered to the synthesis app.

synthesis never imports evaluation: its setting ``SYNTHESIS_FEATURE_METRICS`` names this module, which answers
two questions: ``unavailable()`` (why KID/FID cannot be computed, or None) and ``build(names, device)`` (the
function the trainer calls at each snapshot with G_ema samples and the run's fixed real images, both
``(N, C, H, W)`` in [-1, 1]).

The numbers use the same network, protocol and code as the evaluation page, on the trainer's ``metric_n``
images (256 by default): KID is unbiased at that size and comparable across snapshots; FID from 256 images is
biased upwards (well above a 2048- or 50k-image FID) and serves only to compare snapshots of one run.
"""

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from evaluation import services
from evaluation.metrics import features as fid_features
from evaluation.metrics import get_metric

# Smaller than the evaluation page's 100 x 1000: the trainer compares a few hundred images per snapshot.
KID_SUBSETS = 50
KID_SUBSET_SIZE = 1000


def unavailable() -> str | None:
    """Why KID/FID cannot be computed during training (the weights file is missing or wrong), or None."""
    status = services.weights_status()
    return None if status["installed"] else status["message"]


def build(names: Sequence[str], device: str | torch.device = "cpu") -> Callable[[torch.Tensor, torch.Tensor], dict]:
    """``fn(fakes, reals) -> {name: value}`` for ``names`` among "kid" (KID mean) and "fid".

    Loads the network once; caches the real images' features (the trainer passes the same reals every time).
    """
    unknown = [n for n in names if n not in ("kid", "fid")]
    if unknown:
        raise ValueError(f"unknown training metrics {unknown}; choose from kid, fid")
    model = services._feature_model().to(device)
    cache: dict[str, object] = {}

    def features(images: torch.Tensor) -> np.ndarray:
        return fid_features.extract_features(model, (images.float().clamp(-1, 1) + 1) / 2, device=device)

    def compute(fakes: torch.Tensor, reals: torch.Tensor) -> Mapping[str, float]:
        if cache.get("reals") is not reals:  # the trainer passes one tensor of reals for the whole run
            cache["reals"], cache["real_features"] = reals, features(reals)
        real_f, fake_f = cache["real_features"], features(fakes)
        out = {}
        if "kid" in names:
            # Subsets as large as both sets are all the same set: one is enough.
            subsets = 1 if min(len(real_f), len(fake_f)) <= KID_SUBSET_SIZE else KID_SUBSETS
            kid = get_metric("kid").fn(real_f, fake_f, subsets=subsets, subset_size=KID_SUBSET_SIZE)
            out["kid"] = kid["kid_mean"]
        if "fid" in names:
            out["fid"] = get_metric("fid").fn(real_f, fake_f)["fid"]
        return out

    return compute
