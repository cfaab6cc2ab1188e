"""Tiny fake 2-D datasets in real on-disk layouts: IDRiD segmentation part and a plain image folder.

IDRiD may be redistributed (CC BY 4.0) but each image is ~0.8 MB at 4288x2848, so tests fabricate
look-alikes: the distributed folder names (spaces and dots included), JPG fundus photographs with a black
surround and a bright disc, and one TIF per lesion in the encodings seen in the wild (RGB pure red, gray
0/76, palette 0/1, bilevel, gray 0/255). Sizes are tiny but keep IDRiD's 3:2 aspect.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

# ---------------------------------------------------------------------------------------------- IDRiD

IDRID_SEGMENTATION = "A. Segmentation"
IDRID_ORIGINALS = "1. Original Images"
IDRID_GROUNDTRUTHS = "2. All Segmentation Groundtruths"
IDRID_SPLITS = {"train": "a. Training Set", "test": "b. Testing Set"}
IDRID_LESIONS = {
    "MA": "1. Microaneurysms",
    "HE": "2. Haemorrhages",
    "EX": "3. Hard Exudates",
    "SE": "4. Soft Exudates",
    "OD": "5. Optic Disc",
}
# How each lesion's TIF is written by default: every encoding the importer must read as "non-zero = lesion".
IDRID_ENCODINGS = {"MA": "rgb_red", "HE": "gray76", "EX": "palette01", "SE": "bilevel", "OD": "gray255"}
IDRID_PRECEDENCE = ("MA", "HE", "EX", "SE", "OD")
IDRID_LABELS = ["background", "MA", "HE", "EX", "SE", "OD"]


@dataclass
class IdridImage:
    image_id: str
    split: str  # "train" | "test"
    path: Path
    rgb: np.ndarray  # (H, W, 3) uint8 as written (before JPEG compression)
    lesions: dict[str, np.ndarray] = field(default_factory=dict)  # code -> bool (H, W), written files only
    mask_paths: dict[str, Path] = field(default_factory=dict)


@dataclass
class IdridFixture:
    root: Path  # the folder that holds "A. Segmentation"
    segmentation: Path  # ".../A. Segmentation"
    images: list[IdridImage]

    def by_id(self, image_id: str) -> IdridImage:
        return next(i for i in self.images if i.image_id == image_id)


def idrid_lesions(size: tuple[int, int], k: int = 0) -> dict[str, np.ndarray]:
    """Boolean lesion maps inside the fundus disc, with deliberate overlaps.

    MA dot on HE's corner (MA wins), HE overlapping SE (HE wins), EX overlapping the optic disc (EX wins).
    k shifts the lesions a little so images differ.
    """
    h, w = size
    cy, cx, r = h // 2, w // 2, min(h, w) // 2 - 2
    yy, xx = np.mgrid[:h, :w]
    od_y, od_x, od_r = cy, cx + r // 2, max(r // 4, 3)
    lesions = {code: np.zeros((h, w), bool) for code in IDRID_PRECEDENCE}
    lesions["OD"] = np.hypot(yy - od_y, xx - od_x) <= od_r
    lesions["EX"][od_y - 1 : od_y + 2, od_x - od_r - 2 : od_x - od_r + 3] = True
    he_y, he_x = cy - r // 2 + k, cx - r // 2
    lesions["HE"][he_y : he_y + 6, he_x : he_x + 6] = True
    lesions["MA"][he_y : he_y + 2, he_x : he_x + 2] = True  # on the HE corner
    lesions["MA"][cy + r // 2, cx - 2 - k : cx - k] = True  # on its own
    lesions["SE"][he_y + 4 : he_y + 9, he_x + 4 : he_x + 10] = True  # overlaps HE
    return lesions


def idrid_combined(lesions: dict[str, np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """The class-index mask the importer should produce (documented precedence, MA highest)."""
    combined = np.zeros(size, np.uint8)
    for code in reversed(IDRID_PRECEDENCE):
        if code in lesions:
            combined[lesions[code]] = IDRID_LABELS.index(code)
    return combined


def fundus_rgb(size: tuple[int, int], lesions: dict[str, np.ndarray], k: int = 0) -> np.ndarray:
    """Black surround, orange fundus disc touching top and bottom, brighter optic disc, dark lesions."""
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    r = min(h, w) // 2 - 2
    disc = np.hypot(yy - h // 2, xx - w // 2) <= r
    rgb = np.zeros((h, w, 3), np.float64)
    rgb[disc] = (170 + 3 * k, 80, 40)
    rgb[..., 0] += disc * (xx / w) * 40  # a gentle left-right gradient
    rgb[lesions.get("OD", np.zeros((h, w), bool))] = (250, 230, 170)
    rgb[lesions.get("EX", np.zeros((h, w), bool))] = (240, 240, 120)
    rgb[lesions.get("SE", np.zeros((h, w), bool))] = (220, 200, 180)
    rgb[lesions.get("HE", np.zeros((h, w), bool))] = (90, 20, 10)
    rgb[lesions.get("MA", np.zeros((h, w), bool))] = (60, 0, 0)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def write_lesion_tif(path: Path, lesion: np.ndarray, encoding: str) -> Path:
    """Write a binary lesion map the way different IDRiD copies store it."""
    if encoding == "rgb_red":  # the official files: lesion = (255, 0, 0)
        rgb = np.zeros((*lesion.shape, 3), np.uint8)
        rgb[lesion, 0] = 255
        pil = PILImage.fromarray(rgb, mode="RGB")
    elif encoding == "gray76":  # what a grayscale reader of the official files sees
        pil = PILImage.fromarray((lesion * 76).astype(np.uint8), mode="L")
    elif encoding == "gray255":
        pil = PILImage.fromarray((lesion * 255).astype(np.uint8), mode="L")
    elif encoding == "gray01":
        pil = PILImage.fromarray(lesion.astype(np.uint8), mode="L")
    elif encoding == "palette01":
        pil = PILImage.fromarray(lesion.astype(np.uint8), mode="L").convert("P")
        pil.putpalette([0, 0, 0, 255, 255, 255] + [0, 0, 0] * 254)
        pil.putdata(lesion.astype(np.uint8).ravel().tolist())
    elif encoding == "bilevel":
        pil = PILImage.fromarray(lesion)
    else:
        raise ValueError(f"unknown encoding {encoding}")
    pil.save(path)
    return path


def make_idrid(
    root: Path,
    n_train: int = 2,
    n_test: int = 1,
    size: tuple[int, int] = (60, 90),
    missing: tuple[str, ...] = ("SE",),
    encodings: dict[str, str] | None = None,
) -> IdridFixture:
    """Write root/"A. Segmentation"/... like the distributed archive; returns what was written.

    size is (height, width). missing lists lesion files not written: "SE" omits SE for every image,
    "IDRiD_02:HE" only for that image (the lesion is then absent, as in the real data set).
    """
    encodings = {**IDRID_ENCODINGS, **(encodings or {})}
    seg = root / IDRID_SEGMENTATION
    images: list[IdridImage] = []
    counts = {"train": n_train, "test": n_test}
    number = 0
    for split, folder in IDRID_SPLITS.items():
        image_dir = seg / IDRID_ORIGINALS / folder
        image_dir.mkdir(parents=True, exist_ok=True)
        for lesion_folder in IDRID_LESIONS.values():
            (seg / IDRID_GROUNDTRUTHS / folder / lesion_folder).mkdir(parents=True, exist_ok=True)
        for _ in range(counts[split]):
            number += 1
            image_id = f"IDRiD_{number:02d}"
            lesions = idrid_lesions(size, k=number % 3)
            written = {
                code: lesion
                for code, lesion in lesions.items()
                if code not in missing and f"{image_id}:{code}" not in missing
            }
            rgb = fundus_rgb(size, lesions, k=number)
            path = image_dir / f"{image_id}.jpg"
            PILImage.fromarray(rgb, mode="RGB").save(path, quality=95)
            item = IdridImage(image_id=image_id, split=split, path=path, rgb=rgb, lesions=written)
            for code, lesion in written.items():
                mask_path = seg / IDRID_GROUNDTRUTHS / folder / IDRID_LESIONS[code] / f"{image_id}_{code}.tif"
                item.mask_paths[code] = write_lesion_tif(mask_path, lesion, encodings[code])
            images.append(item)
    return IdridFixture(root=root, segmentation=seg, images=images)


# --------------------------------------------------------------------------------------------- folder


@dataclass
class FolderImage:
    stem: str
    split: str | None  # split folder, None without split folders
    path: Path
    pixels: np.ndarray  # as written: uint8 or uint16, (H, W) or (H, W, 3)
    mask: np.ndarray | None = None  # uint8 class indices as written (before any 0/255 encoding)
    mask_path: Path | None = None


@dataclass
class FolderFixture:
    path: Path
    images: list[FolderImage]

    def by_stem(self, stem: str, split: str | None = None) -> FolderImage:
        return next(i for i in self.images if i.stem == stem and (split is None or i.split == split))


def folder_mask(size: tuple[int, int], n_classes: int = 3, k: int = 0) -> np.ndarray:
    """Class 1 in the top-left, class 2 in the bottom-right (off-centre, so a flip or transpose shows)."""
    h, w = size
    mask = np.zeros((h, w), np.uint8)
    mask[1 + k % 2 : h // 2, 2 : w // 2 - 1] = 1
    if n_classes >= 3:
        mask[h // 2 + 1 : h - 1, w // 2 + 2 : w - 2] = 2
    for extra in range(3, n_classes):
        mask[extra - 3, -1] = extra
    return mask


def folder_pixels(kind: str, mask: np.ndarray, k: int = 0) -> np.ndarray:
    """A fine gradient plus a step per class: gray16 uses values an 8-bit copy could not hold."""
    h, w = mask.shape
    index = np.arange(h * w, dtype=np.int64).reshape(h, w)
    if kind == "gray16":
        # Steps of 7 (never a multiple of 257, so not 8-bit values scaled up) + 20000 per class.
        return (index * 7 + 3 + k + mask.astype(np.int64) * 20000).astype(np.uint16)
    gray8 = ((index % 50) + 10 + k + mask.astype(np.int64) * 60).astype(np.uint8)
    if kind == "gray8":
        return gray8
    if kind in ("rgb", "rgba"):
        rgb = np.stack([gray8, 255 - gray8, (gray8 // 2).astype(np.uint8)], axis=2)
        if kind == "rgba":
            return np.concatenate([rgb, np.full((h, w, 1), 128, np.uint8)], axis=2)
        return rgb
    raise ValueError(f"unknown kind {kind}")


def write_folder_image(path: Path, pixels: np.ndarray, quality: int = 95) -> Path:
    if pixels.ndim == 3:
        pil = PILImage.fromarray(pixels, mode="RGBA" if pixels.shape[2] == 4 else "RGB")
    else:
        pil = PILImage.fromarray(pixels)  # L for uint8, I;16 for uint16
    if path.suffix.lower() in (".jpg", ".jpeg"):
        pil.save(path, quality=quality)
    else:
        pil.save(path)
    return path


def make_folder(
    root: Path,
    *,
    n: int = 4,
    kind: str | list[str] = "gray8",
    ext: str | list[str] = ".png",
    size: tuple[int, int] | list[tuple[int, int]] = (24, 32),
    masks: bool | list[bool] = True,
    n_classes: int = 3,
    mask_encoding: str = "L",
    labels: list[str] | None = None,
    labels_format: str = "txt",
    layout: str = "flat",
    splits: dict[str, int] | None = None,
    per_split_numbering: bool = False,
    junk: bool = True,
) -> FolderFixture:
    """Write a folder dataset under root and return it.

    kind, ext, size and masks are one value for every image or a list with one per image. layout "flat"
    puts images directly in the folder (masks in masks/); "images" uses images/ and masks/. splits (e.g.
    {"train": 2, "test": 1}) writes train/, test/ ... folders each with that layout instead; n is then
    ignored. mask_encoding "L", "P" (palette) or "L255" (binary masks saved as 0/255). junk adds files
    the importer must ignore (.DS_Store, README.txt, a macOS ._ resource fork).
    """
    root.mkdir(parents=True, exist_ok=True)
    plan = [(split, count) for split, count in splits.items()] if splits else [(None, n)]
    total = sum(count for _, count in plan)

    def each(value, i):
        return value[i] if isinstance(value, list) else value

    images: list[FolderImage] = []
    i = 0
    for split, count in plan:
        base = root / split if split else root
        image_dir = base / "images" if layout == "images" else base
        mask_dir = base / "masks"
        image_dir.mkdir(parents=True, exist_ok=True)
        if junk:
            (image_dir / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
            (image_dir / "README.txt").write_text("not an image\n")
            (image_dir / "._img_000.png").write_bytes(b"\x00\x05\x16\x07 resource fork")
        for j in range(count):
            stem = f"img_{(j if per_split_numbering else i):03d}"
            shape = each(size, i)
            mask = folder_mask(shape, n_classes, k=i)
            pixels = folder_pixels(each(kind, i), mask, k=i)
            path = write_folder_image(image_dir / f"{stem}{each(ext, i)}", pixels)
            item = FolderImage(stem=stem, split=split, path=path, pixels=pixels)
            if each(masks, i):
                mask_dir.mkdir(exist_ok=True)
                item.mask, item.mask_path = mask, mask_dir / f"{stem}.png"
                if mask_encoding == "P":
                    pil = PILImage.fromarray(mask, mode="L").convert("P")
                    pil.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0, 0, 255] * 253)
                    pil.putdata(mask.ravel().tolist())
                elif mask_encoding == "L255":
                    pil = PILImage.fromarray(((mask > 0) * 255).astype(np.uint8), mode="L")
                    item.mask = (mask > 0).astype(np.uint8)
                else:
                    pil = PILImage.fromarray(mask, mode="L")
                pil.save(item.mask_path)
            images.append(item)
            i += 1
    assert i == total
    if labels is not None:
        if labels_format == "json":
            import json

            (root / "labels.json").write_text(json.dumps(labels))
        else:
            (root / "labels.txt").write_text("\n".join(labels) + "\n")
    return FolderFixture(path=root, images=images)


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut a file short, as an interrupted copy or download would."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def png_bytes(pixels: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
