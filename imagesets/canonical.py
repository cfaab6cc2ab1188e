"""The canonical image form, shared by every importer and by the GAN sample writer.

Pure NumPy/Pillow, no Django. A canonical image is a float32 array in [0, 1], (H, W) for grayscale
or (H, W, 3) for RGB, stored as a lossless PNG: 16-bit grayscale or 8-bit RGB, with no metadata
chunks. A mask is a uint8 (H, W) array of class indices stored as an 8-bit grayscale PNG.
Real and generated images pass through exactly these functions so they can differ only in content.
"""

import hashlib
import io
from typing import Literal

import numpy as np
from PIL import Image as PILImage

SquarePolicy = Literal["pad", "crop", "fundus"]
RESIZE_FILTER = "lanczos"  # recorded on every set; intensities are clipped back to [0, 1] after it
PNG_COMPRESS_LEVEL = 6


class CanonicalError(ValueError):
    """The data cannot be put in canonical form (shape, range or label problem)."""


def normalise_percentiles(volume: np.ndarray, low: float = 0.5, high: float = 99.5) -> tuple[np.ndarray, dict]:
    """MRI: scale a whole volume so its [low, high] percentiles map to [0, 1], then clip."""
    volume = np.asarray(volume, dtype=np.float64)
    if not np.all(np.isfinite(volume)):
        raise CanonicalError("the volume contains NaN or infinite values")
    lo, hi = np.percentile(volume, [low, high])
    if hi <= lo:
        # A constant volume: map it to 0 instead of dividing by zero.
        return np.zeros(volume.shape, dtype=np.float32), {"p_low": float(lo), "p_high": float(hi)}
    scaled = np.clip((volume - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    return scaled, {"p_low": float(lo), "p_high": float(hi)}


def normalise_window(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    """CT: map the Hounsfield window [center - width/2, center + width/2] to [0, 1], then clip."""
    if width <= 0:
        raise CanonicalError(f"window width must be positive, got {width}")
    hu = np.asarray(hu, dtype=np.float64)
    if not np.all(np.isfinite(hu)):
        raise CanonicalError("the volume contains NaN or infinite values")
    lo = center - width / 2.0
    return np.clip((hu - lo) / width, 0.0, 1.0).astype(np.float32)


def normalise_integer_image(pixels: np.ndarray) -> np.ndarray:
    """8- or 16-bit photographs and PNGs: divide by the type's maximum (RGB: /255)."""
    if pixels.dtype == np.uint8:
        return (pixels.astype(np.float32) / 255.0).astype(np.float32)
    if pixels.dtype == np.uint16:
        return (pixels.astype(np.float32) / 65535.0).astype(np.float32)
    if pixels.dtype == bool:
        return pixels.astype(np.float32)
    raise CanonicalError(f"unsupported pixel type {pixels.dtype}; expected 8- or 16-bit integers")


def _square_box(height: int, width: int, policy: SquarePolicy, image: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, side_h, side_w) of the crop before padding; fundus crops to the bright disc."""
    if policy == "fundus":
        gray = image if image.ndim == 2 else image.mean(axis=2)
        # The fundus is the region clearly brighter than the black surround.
        threshold = max(0.04, float(gray.max()) * 0.08)
        rows = np.flatnonzero((gray > threshold).any(axis=1))
        cols = np.flatnonzero((gray > threshold).any(axis=0))
        if rows.size and cols.size:
            return int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
        return 0, 0, height, width
    if policy == "crop":
        side = min(height, width)
        return (height - side) // 2, (width - side) // 2, side, side
    return 0, 0, height, width


def canonical_spacing(image: np.ndarray, policy: SquarePolicy, size: int, spacing: list[float]) -> list[float]:
    """Pixel spacing (mm, row and column) after squaring and resizing a native image to size x size."""
    height, width = image.shape[:2]
    _, _, h, w = _square_box(height, width, policy, image)
    scale = max(h, w) / size  # padding keeps the pixel pitch; only the resize changes it
    return [round(float(s) * scale, 6) for s in spacing]


def make_square(
    image: np.ndarray, mask: np.ndarray | None, policy: SquarePolicy
) -> tuple[np.ndarray, np.ndarray | None]:
    """Crop (policy crop/fundus) then zero-pad, centred, so height == width. Mask follows exactly."""
    height, width = image.shape[:2]
    top, left, h, w = _square_box(height, width, policy, image)
    image = image[top : top + h, left : left + w]
    if mask is not None:
        mask = mask[top : top + h, left : left + w]
    side = max(h, w)
    pad_y, pad_x = side - h, side - w
    pad = ((pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2))
    if pad_y or pad_x:
        image = np.pad(image, pad + ((0, 0),) * (image.ndim - 2))
        if mask is not None:
            mask = np.pad(mask, pad)
    return image, mask


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Resize a [0, 1] float image to size x size, per channel in 32-bit float (no 8-bit rounding)."""
    if image.shape[0] == size and image.shape[1] == size:
        return image.astype(np.float32)
    channels = [image] if image.ndim == 2 else [image[..., c] for c in range(image.shape[2])]
    out = [
        np.asarray(
            PILImage.fromarray(np.ascontiguousarray(ch, dtype=np.float32), mode="F").resize(
                (size, size), PILImage.Resampling.LANCZOS
            )
        )
        for ch in channels
    ]
    resized = out[0] if image.ndim == 2 else np.stack(out, axis=2)
    return np.clip(resized, 0.0, 1.0).astype(np.float32)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of a class-index mask: never invents a class."""
    if mask.shape[0] == size and mask.shape[1] == size:
        return mask.astype(np.uint8)
    return np.asarray(
        PILImage.fromarray(mask.astype(np.uint8), mode="L").resize((size, size), PILImage.Resampling.NEAREST)
    )


def check_image(image: np.ndarray, channels: int) -> None:
    if image.ndim not in (2, 3):
        raise CanonicalError(f"expected a 2-D image, got an array of shape {image.shape}")
    got = 1 if image.ndim == 2 else image.shape[2]
    if got != channels:
        raise CanonicalError(f"expected {channels} channel(s), got {got} (shape {image.shape})")
    if image.size == 0:
        raise CanonicalError("empty image")
    if not np.all(np.isfinite(image)):
        raise CanonicalError("the image contains NaN or infinite values")
    if image.min() < 0.0 or image.max() > 1.0:
        raise CanonicalError(f"intensities must be in [0, 1], got [{image.min():.4g}, {image.max():.4g}]")


def check_mask(mask: np.ndarray, image_shape: tuple[int, ...], n_classes: int) -> None:
    if mask.shape != tuple(image_shape[:2]):
        raise CanonicalError(f"mask shape {mask.shape} differs from image shape {tuple(image_shape[:2])}")
    if mask.size and (mask.min() < 0 or mask.max() >= n_classes):
        values = sorted(int(v) for v in np.unique(mask) if v < 0 or v >= n_classes)
        raise CanonicalError(f"unknown label value(s) {values[:10]}; expected 0..{n_classes - 1}")


def encode_image_png(image: np.ndarray) -> bytes:
    """[0, 1] float -> PNG bytes: 16-bit grayscale for (H, W), 8-bit RGB for (H, W, 3); no metadata."""
    if image.ndim == 2:
        pixels = np.round(np.clip(image, 0.0, 1.0) * 65535.0).astype(np.uint16)
        pil = PILImage.fromarray(pixels)  # mode I;16
    else:
        pixels = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
        pil = PILImage.fromarray(pixels, mode="RGB")
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def encode_mask_png(mask: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(mask.astype(np.uint8), mode="L").save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def decode_image_png(data: bytes | str) -> np.ndarray:
    """Canonical PNG (bytes or path) -> float32 [0, 1], (H, W) or (H, W, 3)."""
    source = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    with PILImage.open(source) as pil:
        pil.load()
        if pil.mode in ("I;16", "I;16B", "I"):
            return (np.asarray(pil, dtype=np.float64) / 65535.0).astype(np.float32)
        if pil.mode == "L":
            return (np.asarray(pil, dtype=np.float32) / 255.0).astype(np.float32)
        return (np.asarray(pil.convert("RGB"), dtype=np.float32) / 255.0).astype(np.float32)


def decode_mask_png(data: bytes | str) -> np.ndarray:
    source = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    with PILImage.open(source) as pil:
        return np.asarray(pil, dtype=np.uint8)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonicalise(
    image: np.ndarray,
    mask: np.ndarray | None,
    *,
    size: int,
    channels: int,
    n_classes: int,
    square: SquarePolicy,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Check, square and resize one image (and its mask) to the set's canonical size."""
    check_image(image, channels)
    if mask is not None:
        check_mask(mask, image.shape, n_classes)
    image, mask = make_square(image, mask, square)
    image = resize_image(image, size)
    if mask is not None:
        mask = resize_mask(mask, size)
    return image, mask
