"""Canonical images of a set as NumPy arrays (for training and metrics)."""

import numpy as np

from imagesets.canonical import decode_image_png, decode_mask_png


def load_images(images) -> tuple[np.ndarray, np.ndarray | None, list[int], list]:
    """Image rows (a queryset) -> images (N, C, H, W) float32 in [0, 1], masks (N, H, W) uint8 or None
    (None unless every image has one), image ids, canonical pixel spacings (None where unknown)."""
    rows = list(images.order_by("imageset_id", "index"))
    if not rows:
        return np.zeros((0, 1, 1, 1), np.float32), None, [], []
    arrays, masks, spacings = [], [], []
    for row in rows:
        pixels = decode_image_png(str(row.path))
        arrays.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))  # (C, H, W)
        masks.append(decode_mask_png(str(row.mask_path)) if row.mask_file else None)
        spacings.append(row.metadata.get("canonical_pixel_spacing_mm"))
    stacked_masks = np.stack(masks) if all(m is not None for m in masks) else None
    return np.stack(arrays).astype(np.float32), stacked_masks, [r.pk for r in rows], spacings
