"""The FID-Inception feature extractor (pytorch-fid protocol), written in plain PyTorch.

The network is the TensorFlow ``inception-2015-12-05`` graph as ported by pytorch-fid
(``mseitzer/pytorch-fid:src/pytorch_fid/inception.py``, version 0.3.0): torchvision's Inception-v3 layout with
1008 output classes, no auxiliary head, and the FID-specific patches

* ``FIDInceptionA`` / ``FIDInceptionC`` / ``FIDInceptionE_1``: the pooling branch averages with
  ``count_include_pad=False`` (TensorFlow ignores the padded zeros),
* ``FIDInceptionE_2`` (``Mixed_7c``): the pooling branch is a *max* pool, not an average pool.

Module names equal torchvision's, so the state-dict keys (``Conv2d_1a_3x3.conv.weight`` ... ``fc.bias``, 566
tensors) are those of the official weights file ``pt_inception-2015-12-05-6726825d.pth`` and it loads with
``strict=True``. Input handling is pytorch-fid's: images in [0, 1] -> bilinear resize to 299x299
(``align_corners=False``, no antialias) -> ``2x - 1``; grayscale is repeated to three channels (pytorch-fid gets
the same from ``PIL.Image.convert("RGB")``). Output: the 2048-d pool3 features (global average pool of
``Mixed_7c``).

The weights cannot be downloaded here: :func:`load_fid_inception` takes a local path, checks the file's SHA-256
and raises :class:`WeightsUnavailable` with install instructions otherwise. For tests,
:func:`build_random_fid_inception` gives the same architecture with random weights and BatchNorm statistics
recalibrated on a few images (with the untouched random BatchNorm every pool3 feature is ~0, so every FID is 0).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

INCEPTION_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + INCEPTION_FILENAME
# SHA-256 of the official file (95,628,359 bytes); its first 8 hex digits are the "6726825d" in the name (torch
# hub naming). The same bytes are distributed by torch-fidelity as weights-inception-2015-12-05-6726825d.pth.
INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
INCEPTION_SIZE = 299
FEATURE_DIM = 2048

# Recorded with every score: FID values from other implementations are not comparable.
PROTOCOL = {
    "implementation": "evaluation.metrics (pytorch-fid 0.3.0 protocol)",
    "network": "FID-Inception (TF inception-2015-12-05 port)",
    "resize": "bilinear 299x299, align_corners=False, no antialias",
    "normalise": "2x-1 from [0,1]",
    "layer": "pool3",
    "dims": FEATURE_DIM,
    "grayscale": "repeated to 3 channels",
}


class WeightsUnavailable(RuntimeError):
    """The FID-Inception weights file is missing, unreadable or not the expected file."""


def weights_install_instructions(path: str | os.PathLike | None) -> str:
    """How an operator installs the weights file (shown with every :class:`WeightsUnavailable`)."""
    target = str(path) if path else f"<some folder>/{INCEPTION_FILENAME}"
    return (
        "FID unavailable: the FID-Inception weights are not installed. This machine cannot download them. "
        f"On a machine with internet access download {INCEPTION_URL} , check that `sha256sum {INCEPTION_FILENAME}` "
        f"prints {INCEPTION_SHA256} , copy the file to {target} and point the FID_INCEPTION_WEIGHTS setting "
        "(environment variable) at it."
    )


# --------------------------------------------------------------------------------------------------------------
# Building blocks (names and shapes equal torchvision.models.inception, which pytorch-fid patches)
# --------------------------------------------------------------------------------------------------------------


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (eps=1e-3, as TensorFlow's Inception) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool_tf(x: torch.Tensor) -> torch.Tensor:
    # FID patch: TensorFlow's average pool does not count the padded zeros.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """Mixed_5b/5c/5d: 1x1, 5x5, double 3x3 and (TF-style average) pool branches."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """Mixed_6a (grid reduction 35 -> 17); unpatched in pytorch-fid."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        b3d = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b3d, bp], 1)


class FIDInceptionC(nn.Module):
    """Mixed_6b..6e: factorised 7x7 branches and a (TF-style average) pool branch."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7d = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            b7d = layer(b7d)
        bp = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([b1, b7, b7d, bp], 1)


class InceptionD(nn.Module):
    """Mixed_7a (grid reduction 17 -> 8); unpatched in pytorch-fid."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], 1)


class FIDInceptionE(nn.Module):
    """Mixed_7b (``pool="avg"``, pytorch-fid's FIDInceptionE_1) and Mixed_7c (``pool="max"``, FIDInceptionE_2)."""

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', not {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        b3d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = torch.cat([self.branch3x3dbl_3a(b3d), self.branch3x3dbl_3b(b3d)], 1)
        if self.pool == "avg":
            pooled = _avg_pool_tf(x)
        else:
            # FID patch (Mixed_7c only): the TF graph max-pools here, unlike the Inception paper.
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        bp = self.branch_pool(pooled)
        return torch.cat([b1, b3, b3d, bp], 1)


class FIDInceptionV3(nn.Module):
    """FID-Inception returning pool3 features ``(B, 2048)`` for images ``(B, C, H, W)`` in [0, 1], C in {1, 3}.

    ``fc`` (1008 classes) is never used for features; it exists so the official state dict loads strictly.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, pool="avg")
        self.Mixed_7c = FIDInceptionE(2048, pool="max")
        self.fc = nn.Linear(2048, 1008)

    @staticmethod
    def preprocess(x: torch.Tensor) -> torch.Tensor:
        """[0, 1] images ``(B, C, H, W)`` -> network input ``(B, 3, 299, 299)`` in [-1, 1], as pytorch-fid."""
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected images of shape (B, 1 or 3, H, W), got {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # (B, 3, H, W): what PIL's convert("RGB") does to a gray image
        # pytorch-fid resizes even 299x299 inputs (a no-op then); align_corners=False and no antialias.
        x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
        return 2 * x - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(x)  # (B, 3, 299, 299)
        # pytorch-fid block 0
        x = self.Conv2d_1a_3x3(x)  # (B, 32, 149, 149)
        x = self.Conv2d_2a_3x3(x)  # (B, 32, 147, 147)
        x = self.Conv2d_2b_3x3(x)  # (B, 64, 147, 147)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (B, 64, 73, 73)
        # block 1
        x = self.Conv2d_3b_1x1(x)  # (B, 80, 73, 73)
        x = self.Conv2d_4a_3x3(x)  # (B, 192, 71, 71)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (B, 192, 35, 35)
        # block 2
        x = self.Mixed_5b(x)  # (B, 256, 35, 35)
        x = self.Mixed_5c(x)  # (B, 288, 35, 35)
        x = self.Mixed_5d(x)  # (B, 288, 35, 35)
        x = self.Mixed_6a(x)  # (B, 768, 17, 17)
        x = self.Mixed_6b(x)
        x = self.Mixed_6c(x)
        x = self.Mixed_6d(x)
        x = self.Mixed_6e(x)  # (B, 768, 17, 17)
        # block 3
        x = self.Mixed_7a(x)  # (B, 1280, 8, 8)
        x = self.Mixed_7b(x)  # (B, 2048, 8, 8)
        x = self.Mixed_7c(x)  # (B, 2048, 8, 8)
        return x.mean(dim=(2, 3))  # (B, 2048): pool3 = adaptive average pool to 1x1


# --------------------------------------------------------------------------------------------------------------
# Loading the official weights
# --------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file; cached per (path, size, mtime) because the weights file is ~96 MB."""
    st = os.stat(path)
    return _sha256_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def load_fid_inception(
    path: str | os.PathLike | None,
    *,
    expected_sha256: str | None = INCEPTION_SHA256,
    device: str | torch.device = "cpu",
) -> FIDInceptionV3:
    """The FID-Inception with the weights from ``path``, in eval mode on ``device``.

    Raises :class:`WeightsUnavailable` (with install instructions) when ``path`` is None or missing, when the
    file's SHA-256 differs from ``expected_sha256`` (pass None to skip the check, e.g. for a test file), or when
    it is not a state dict of this architecture.
    """
    if path is None or not Path(path).is_file():
        raise WeightsUnavailable(f"No weights file at {path!s}. " + weights_install_instructions(path))
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256.lower():
            raise WeightsUnavailable(
                f"{path} has SHA-256 {actual}, expected {expected_sha256}: not the official FID-Inception "
                "weights (truncated download or another file). " + weights_install_instructions(path)
            )
    try:
        # weights_only: a state dict is plain tensors, and an untrusted pickle must never execute code.
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file means "unavailable", with the reason
        raise WeightsUnavailable(f"Cannot read {path}: {exc}. " + weights_install_instructions(path)) from exc
    model = FIDInceptionV3()
    try:
        model.load_state_dict(state_dict, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise WeightsUnavailable(f"{path} is not an FID-Inception state dict: {exc}") from exc
    return model.eval().requires_grad_(False).to(device)


# --------------------------------------------------------------------------------------------------------------
# Random-weight network for tests
# --------------------------------------------------------------------------------------------------------------


def build_random_fid_inception(
    calibration_images: np.ndarray | torch.Tensor,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
) -> FIDInceptionV3:
    """The FID-Inception with random weights and BatchNorm statistics recalibrated on ``calibration_images``.

    For tests only (its FID values mean nothing). Untouched BatchNorm (mean 0, var 1) lets the random
    activations collapse, so every pool3 feature is ~0 and every FID is 0; here the running statistics are reset
    and re-estimated as a cumulative average (``momentum=None``) over the given images in train mode. The
    global RNG is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FIDInceptionV3()
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                # Random affine parameters, so the features differ per channel like a trained network's.
                nn.init.uniform_(m.weight, 0.5, 1.5)
                nn.init.uniform_(m.bias, -0.2, 0.2)
    model = model.to(device)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average over all calibration batches
    model.train()
    images = _as_tensor(calibration_images)
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            model(images[start : start + batch_size].to(device))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1
    return model.eval().requires_grad_(False)


# --------------------------------------------------------------------------------------------------------------
# Feature extraction
# --------------------------------------------------------------------------------------------------------------


def _as_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Images ``(N, C, H, W)`` (numpy or torch, any float/uint8 dtype already scaled to [0, 1]) -> float32."""
    t = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if t.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(t.shape)}")
    if not t.is_floating_point():
        raise ValueError("images must be floats in [0, 1] (convert uint8 with /255 first)")
    return t.float()


def extract_features(
    model: FIDInceptionV3,
    images: np.ndarray | torch.Tensor,
    *,
    batch_size: int = 50,
    device: str | torch.device | None = None,
    quantize_uint8: bool = False,
    progress_fn: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Pool3 features ``(N, 2048)`` float64 of images ``(N, C, H, W)`` in [0, 1].

    ``quantize_uint8=True`` rounds to 1/255 steps first, which is what pytorch-fid sees when it reads 8-bit PNGs;
    canonical 16-bit grayscale images keep their full precision by default (a documented deviation).
    ``progress_fn(done, total)`` is called after each batch. Batch size does not change the result (eval mode).
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    images = _as_tensor(images)
    model = model.to(device).eval()
    out = np.empty((len(images), FEATURE_DIM), dtype=np.float64)  # float64 like pytorch-fid's pred_arr
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device)  # (B, C, H, W)
            if quantize_uint8:
                batch = torch.round(batch.clamp(0, 1) * 255) / 255
            out[start : start + len(batch)] = model(batch).double().cpu().numpy()
            if progress_fn is not None:
                progress_fn(start + len(batch), len(images))
    return out
