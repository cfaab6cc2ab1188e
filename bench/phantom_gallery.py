"""Write a PNG contact sheet of phantom slices, each shown plain and with its mask overlaid.

    .venv/bin/python bench/phantom_gallery.py /tmp/cardiac.png --kind cardiac --subjects 4
    .venv/bin/python bench/phantom_gallery.py /tmp/liver.png --kind liver --subjects 3 --seed 7

Per subject (and, for cardiac, per phase) one row of plain slices and one row of the same slices with
the mask in colour (cardiac: RV blue, MYO green, LV red; liver: liver orange) and outlined. Tiles are
padded to square and resized like the importer does (--tile pixels, Lanczos; masks nearest).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imagesets.canonical import make_square, resize_image, resize_mask  # noqa: E402
from imagesets.importers.base import ImportOptions  # noqa: E402
from imagesets.phantoms import cardiac_subject, liver_subject  # noqa: E402

COLOURS = {
    "cardiac": {1: (60, 120, 255), 2: (40, 220, 90), 3: (255, 60, 60)},
    "liver": {1: (255, 150, 30)},
}
LABEL_H = 14  # pixels of caption above each row


def overlay(image: np.ndarray, mask: np.ndarray, colours: dict[int, tuple[int, int, int]]) -> np.ndarray:
    """(H, W) [0, 1] image + (H, W) labels -> (H, W, 3) uint8 with tinted regions and 1-px outlines."""
    rgb = np.repeat((image[..., None] * 255.0), 3, axis=2)
    for value, colour in colours.items():
        region = mask == value
        if not region.any():
            continue
        rgb[region] = 0.65 * rgb[region] + 0.35 * np.array(colour)
        edge = region & ~ndimage.binary_erosion(region)
        rgb[edge] = colour
    return np.clip(rgb, 0, 255).astype(np.uint8)


def tile(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    image, mask = make_square(image, mask, "pad")
    return resize_image(image, size), resize_mask(mask, size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="PNG file to write")
    parser.add_argument("--kind", choices=["cardiac", "liver"], default="cardiac")
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--first", type=int, default=0, help="index of the first subject shown")
    parser.add_argument("--seed", type=int, default=ImportOptions().seed)
    parser.add_argument("--tile", type=int, default=128, help="tile size in pixels")
    parser.add_argument("--phase", choices=["ED", "ES", "both"], default="both", help="cardiac phases shown")
    args = parser.parse_args(argv)

    make = cardiac_subject if args.kind == "cardiac" else liver_subject
    rows: list[tuple[str, list[np.ndarray]]] = []
    started = time.perf_counter()
    for k in range(args.first, args.first + args.subjects):
        samples = make(args.seed, k)
        groups: dict[str, list] = {}
        for s in samples:
            key = s.metadata.get("phase", "")
            if args.kind == "cardiac" and args.phase != "both" and key != args.phase:
                continue
            groups.setdefault(key, []).append(s)
        for key, group in groups.items():
            meta = group[0].metadata
            caption = f"{args.kind} {k:03d} {key} {meta.get('group', '')} {group[0].image.shape[1]}x{group[0].image.shape[0]} @ {meta['pixel_spacing_mm'][0]:.2f} mm"
            plain, tinted = [], []
            for s in group:
                img, msk = tile(s.image, s.mask, args.tile)
                plain.append(np.repeat((img[..., None] * 255.0).round().astype(np.uint8), 3, axis=2))
                tinted.append(overlay(img, msk, COLOURS[args.kind]))
            rows.append((caption, plain))
            rows.append(("", tinted))
    elapsed = time.perf_counter() - started

    columns = max(len(r[1]) for r in rows)
    t = args.tile
    sheet = Image.new("RGB", (columns * (t + 2), len(rows) * (t + 2 + LABEL_H)), (20, 20, 20))
    draw = ImageDraw.Draw(sheet)
    for r, (caption, tiles) in enumerate(rows):
        y = r * (t + 2 + LABEL_H)
        draw.text((2, y + 1), caption, fill=(230, 230, 230))
        for c, pixels in enumerate(tiles):
            sheet.paste(Image.fromarray(pixels), (c * (t + 2), y + LABEL_H))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output)
    print(f"wrote {args.output} ({args.subjects} {args.kind} subjects generated in {elapsed:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
