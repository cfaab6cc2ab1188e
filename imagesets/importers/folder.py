"""Importer for a plain folder of 2-D images, with optional class-index masks. Pure Python, no Django.

Layout (PATH is the folder given; folder names are matched case-insensitively)::

    PATH/labels.txt | labels.json     optional class names, index 0 first (background)
    PATH/images/*.png                 images, or the image files directly in PATH
    PATH/masks/*.png                  optional masks, matched to images by file name stem

or, with the dataset's own splits, ``PATH/train/``, ``PATH/val/``, ``PATH/test/`` (any of them), each laid
out as above (``PATH/train/images/`` + ``PATH/train/masks/`` or ``PATH/train/*.png`` + ``PATH/train/masks/``).
Only files directly in those folders are read (no recursion). Hidden files (``.DS_Store``, macOS ``._x.png``)
and files that are not PNG/JPG/JPEG/TIF/TIFF are ignored.

- Images: 8-bit (/255) or 16-bit (/65535) integers, grayscale or RGB (alpha dropped, palette expanded).
  32-bit integer TIFFs (Pillow mode ``I``) are read as 16-bit when every value fits in 0..65535.
  The first image (in sorted order) fixes the channel count; every other image must match.
  Sizes may differ: every image is zero-padded to a square (policy ``pad``) and resized by the service.
- Masks: 8-bit class-index images (Pillow mode L or P, palette indices taken as they are; bilevel 1-bit
  masks give 0/1), PNG or TIF only (JPEG would change the class values). Either every image has a mask
  or none does. Label names come from ``labels.txt`` (one per line) or ``labels.json`` (a list, or an
  object mapping "0", "1", ... to names); without one they are ``background, class1, ...`` up to the
  largest value found in the masks, except that masks holding only 0 and 255 are taken as binary
  (255 -> class 1), the usual way binary masks are saved.
- Subjects: the file stem (``case_012.png`` -> ``case_012``), so a seeded split treats every image as
  its own subject. With split folders where the same stem occurs in two splits (``train/1.png`` and
  ``test/1.png``, numbered per split), every subject is prefixed with its split (``train/1``).
- Splits: the split folders when present and ``options.split_seed`` is None; otherwise a seeded split by
  subject (seed ``options.split_seed``, or 0 when the folder has no splits of its own).
"""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from imagesets.canonical import CanonicalError, normalise_integer_image
from imagesets.importers.base import (
    DatasetError,
    DatasetHeader,
    ImportOptions,
    ProgressFn,
    Sample,
    assign_splits,
    iterate_with_progress,
    label_mask,
    require_dir,
)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
LOSSY_EXTENSIONS = frozenset({".jpg", ".jpeg"})
SPLIT_FOLDERS = ("train", "val", "test")
LABEL_FILES = ("labels.txt", "labels.json")

SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
GRAY_MODES = frozenset({"1", "L", "LA", "I"}) | SIXTEEN_BIT_MODES
COLOUR_MODES = frozenset({"RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr"})
MASK_MODES = frozenset({"L", "P", "1"})
MAX_NAMES_IN_ERROR = 5
SCAN_SHARE = 0.2  # share of the progress bar for the mask scan (decoding masks only, cheaper than images)


# ------------------------------------------------------------------------------------ Pillow helpers
# Shared with the IDRiD importer.


# UnidentifiedImageError and "image file is truncated" are OSErrors; Pillow raises SyntaxError or ValueError
# on some malformed headers, and DecompressionBombError (a plain Exception) above 2 x MAX_IMAGE_PIXELS.
_PILLOW_ERRORS = (OSError, SyntaxError, ValueError, PILImage.DecompressionBombError)


def _pillow_error(path: Path, what: str, exc: Exception) -> DatasetError:
    if isinstance(exc, PILImage.DecompressionBombError):
        return DatasetError(f"{path}: the {what} is too large to decode safely ({exc})")
    return DatasetError(f"{path}: cannot read the {what}; the file is corrupt or not an image ({exc})")


def pil_header(path: Path, what: str = "image") -> tuple[str, tuple[int, int]]:
    """(Pillow mode, (width, height)) from the file header only, without decoding the pixels."""
    try:
        with PILImage.open(path) as pil:
            if getattr(pil, "n_frames", 1) > 1:
                raise DatasetError(f"{path}: the {what} has {pil.n_frames} pages or frames; expected one 2-D image")
            return pil.mode, pil.size
    except DatasetError:
        raise
    except _PILLOW_ERRORS as exc:
        raise _pillow_error(path, what, exc) from None


def pil_pixels(path: Path, convert: Callable[[PILImage.Image], np.ndarray], what: str = "image") -> np.ndarray:
    """Decode the whole file and turn it into an array with convert(pil) while the file is open.

    Pillow decodes lazily, so a truncated file only fails in load(): forcing it here turns that into a
    DatasetError naming the file instead of an error deep inside NumPy.
    """
    try:
        with PILImage.open(path) as pil:
            pil.load()
            return convert(pil)
    except (DatasetError, CanonicalError):
        raise
    except _PILLOW_ERRORS as exc:
        raise _pillow_error(path, what, exc) from None


def is_candidate(path: Path, extensions: frozenset[str] = IMAGE_EXTENSIONS) -> bool:
    """An image file by extension, skipping hidden files such as macOS ``._name.png`` resource forks."""
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in extensions


def child_dir(parent: Path, name: str) -> Path | None:
    """The sub-folder called name, matched case-insensitively (Images/, MASKS/ ...); None if absent."""
    matches = [p for p in parent.iterdir() if p.is_dir() and p.name.lower() == name.lower()]
    if len(matches) > 1:
        raise DatasetError(f"{parent}: several folders named {name!r} differing only in case")
    return matches[0] if matches else None


# ------------------------------------------------------------------------------------------- layout


@dataclass
class _Item:
    image: Path
    mask: Path | None
    folder_split: str | None  # "train" | "val" | "test" from a split folder, None without split folders
    stem: str
    mode: str = ""
    size: tuple[int, int] = (0, 0)
    subject: str = ""


@dataclass
class _Root:
    items: list[_Item]
    masks_dir: Path | None
    mask_files: int


def _index_by_stem(files: list[Path], folder: Path) -> dict[str, Path]:
    by_stem: dict[str, Path] = {}
    for file in files:
        if file.stem in by_stem:
            raise DatasetError(
                f"{folder}: {by_stem[file.stem].name} and {file.name} have the same name stem; "
                "images and masks are matched by stem, so stems must be unique"
            )
        by_stem[file.stem] = file
    return by_stem


def _read_root(root: Path, split: str | None) -> _Root:
    images_dir = child_dir(root, "images") or root
    masks_dir = child_dir(root, "masks")
    images = _index_by_stem(sorted(p for p in images_dir.iterdir() if is_candidate(p)), images_dir)
    masks: dict[str, Path] = {}
    if masks_dir is not None:
        masks = _index_by_stem(sorted(p for p in masks_dir.iterdir() if is_candidate(p)), masks_dir)
    items = [_Item(image=path, mask=masks.get(stem), folder_split=split, stem=stem) for stem, path in images.items()]
    return _Root(items=items, masks_dir=masks_dir, mask_files=len(masks))


def _discover(path: Path) -> tuple[list[_Item], bool]:
    """All images with their masks, and whether the folder brings its own splits."""
    split_dirs = {name: d for name in SPLIT_FOLDERS if (d := child_dir(path, name)) is not None}
    roots: list[tuple[Path, _Root]] = []
    if split_dirs:
        loose = [p.name for p in path.iterdir() if is_candidate(p)]
        if loose or child_dir(path, "images") is not None:
            found = ", ".join(loose[:MAX_NAMES_IN_ERROR]) or "images/"
            raise DatasetError(
                f"{path} has split folders ({', '.join(split_dirs)}) and also images outside them ({found}); "
                "put every image in a split folder, or remove the split folders"
            )
        roots = [(d, _read_root(d, name)) for name, d in split_dirs.items()]
    else:
        roots = [(path, _read_root(path, None))]
    items = [item for _, root in roots for item in root.items]
    if not items:
        where = f"{path} (nor in its {', '.join(s + '/' for s in split_dirs)} folders)" if split_dirs else str(path)
        raise DatasetError(f"no images found in {where}; expected PNG, JPG or TIF files")
    with_mask = [i for i in items if i.mask is not None]
    without = [i for i in items if i.mask is None]
    if with_mask and without:
        names = ", ".join(str(i.image.relative_to(path)) for i in without[:MAX_NAMES_IN_ERROR])
        more = f" and {len(without) - MAX_NAMES_IN_ERROR} more" if len(without) > MAX_NAMES_IN_ERROR else ""
        raise DatasetError(
            f"{len(without)} of {len(items)} images have no mask with the same file name stem in masks/: "
            f"{names}{more}; give every image a mask, or none"
        )
    if not with_mask:
        unmatched = [(d, r) for d, r in roots if r.mask_files]
        if unmatched:
            folder, root = unmatched[0]
            raise DatasetError(
                f"none of the {root.mask_files} files in {root.masks_dir} matches an image of {folder} by "
                "file name stem (masks/case1.png goes with case1.png)"
            )
    for item in with_mask:
        assert item.mask is not None
        if item.mask.suffix.lower() in LOSSY_EXTENSIONS:
            raise DatasetError(f"{item.mask}: masks must be PNG or TIF; JPEG compression changes class values")
    return items, bool(split_dirs)


def _assign_subjects(items: list[_Item], has_split_folders: bool) -> str:
    """Set item.subject; returns how subjects were derived (recorded on the set)."""
    by_stem: dict[str, set[str | None]] = {}
    for item in items:
        by_stem.setdefault(item.stem, set()).add(item.folder_split)
    if has_split_folders and any(len(splits) > 1 for splits in by_stem.values()):
        # Per-split numbering (train/1.png, test/1.png): the same stem would merge unrelated images.
        for item in items:
            item.subject = f"{item.folder_split}/{item.stem}"
        return "split folder/file name stem (stems repeat across split folders)"
    for item in items:
        item.subject = item.stem
    return "file name stem"


# ------------------------------------------------------------------------------------------- labels


def _read_label_file(path: Path) -> tuple[list[str], str] | None:
    found = [path / name for name in LABEL_FILES if (path / name).is_file()]
    if not found:
        return None
    if len(found) > 1:
        raise DatasetError(f"{path} has both labels.txt and labels.json; keep one")
    file = found[0]
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{file}: cannot read the label names ({exc})") from None
    if file.suffix == ".txt":
        lines = [line.strip() for line in text.splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        if "" in lines:
            raise DatasetError(f"{file}: line {lines.index('') + 1} is empty; give one class name per line")
        names = lines
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{file}: not valid JSON ({exc})") from None
        if isinstance(data, dict):
            try:
                indexed = {int(k): v for k, v in data.items()}
            except ValueError:
                raise DatasetError(f"{file}: keys must be class indices 0, 1, 2 ...") from None
            if sorted(indexed) != list(range(len(indexed))):
                raise DatasetError(f"{file}: class indices must run 0, 1, 2 ... without gaps")
            data = [indexed[i] for i in range(len(indexed))]
        if not isinstance(data, list) or not all(isinstance(n, str) and n.strip() for n in data):
            raise DatasetError(f"{file}: expected a list of class names (index 0 = background)")
        names = [n.strip() for n in data]
    if len(names) < 2:
        raise DatasetError(f"{file}: name the background (index 0) and at least one class")
    if len(set(names)) != len(names):
        raise DatasetError(f"{file}: class names must be unique")
    return names, file.name


def _mask_indices(pil: PILImage.Image, path: Path) -> np.ndarray:
    if pil.mode not in MASK_MODES:
        raise DatasetError(
            f"{path}: masks must be 8-bit class-index images (grayscale L or palette P); this one is {pil.mode}"
        )
    # For P, np.asarray gives the palette indices, which are the class values.
    return np.asarray(pil).astype(np.uint8)


def _scaled(progress: ProgressFn | None, start: float, end: float) -> ProgressFn | None:
    """Map a 0..1 progress onto start..end, so a scan pass and a read pass do not both run 0 -> 100 %."""
    if progress is None:
        return None
    return lambda fraction, message: progress(start + (end - start) * fraction, message)


def _scan_mask_values(items: list[_Item], progress: ProgressFn | None) -> np.ndarray:
    """Which of the 256 possible values occur in any mask (a pass over every mask, before any sample)."""
    seen = np.zeros(256, dtype=bool)
    for item in iterate_with_progress(items, progress, "scanning mask"):
        assert item.mask is not None
        values = pil_pixels(item.mask, lambda pil, p=item.mask: _mask_indices(pil, p), "mask")
        seen |= np.bincount(values.ravel(), minlength=256) > 0
    return seen


# ------------------------------------------------------------------------------------------- images


def _channels_of(mode: str) -> int:
    return 1 if mode in GRAY_MODES else 3


def _bit_depth_of(mode: str) -> int:
    return 16 if mode in SIXTEEN_BIT_MODES or mode == "I" else 1 if mode == "1" else 8


def _image_pixels(pil: PILImage.Image, path: Path) -> np.ndarray:
    mode = pil.mode
    if mode in SIXTEEN_BIT_MODES:
        pixels = np.asarray(pil).astype(np.uint16)  # also swaps big-endian I;16B to native order
    elif mode == "I":
        raw = np.asarray(pil)
        if raw.size and (int(raw.min()) < 0 or int(raw.max()) > 65535):
            raise DatasetError(
                f"{path}: 32-bit integer values {int(raw.min())}..{int(raw.max())} do not fit in 16 bits; "
                "convert the image to 8 or 16-bit"
            )
        pixels = raw.astype(np.uint16)
    elif mode in ("1", "L"):
        pixels = np.asarray(pil)
    elif mode == "LA":
        pixels = np.asarray(pil.getchannel(0))
    elif mode == "RGB":
        pixels = np.asarray(pil)
    else:  # RGBA, RGBX, P, PA, CMYK, YCbCr: alpha is dropped, palettes expanded
        pixels = np.asarray(pil.convert("RGB"))
    return normalise_integer_image(pixels)


def _read_headers(items: list[_Item], path: Path) -> int:
    """Open every image and mask header (cheap); check modes, channel counts and sizes up front."""
    for item in items:
        item.mode, item.size = pil_header(item.image)
        if item.mode not in GRAY_MODES | COLOUR_MODES:
            raise DatasetError(
                f"{item.image}: unsupported pixel format {item.mode}; expected 8 or 16-bit grayscale or RGB"
            )
        if item.mask is not None:
            mask_mode, mask_size = pil_header(item.mask, "mask")
            if mask_mode not in MASK_MODES:
                raise DatasetError(
                    f"{item.mask}: masks must be 8-bit class-index images (grayscale L or palette P); "
                    f"this one is {mask_mode}"
                )
            if mask_size != item.size:
                raise DatasetError(
                    f"{item.mask}: the mask is {mask_size[0]}x{mask_size[1]} but its image {item.image.name} is "
                    f"{item.size[0]}x{item.size[1]} (width x height); they must be the same size"
                )
    first = items[0]
    channels = _channels_of(first.mode)
    for item in items[1:]:
        if _channels_of(item.mode) != channels:
            kind = {1: "grayscale (1 channel)", 3: "colour (3 channels)"}
            raise DatasetError(
                f"{item.image.relative_to(path)} is {kind[_channels_of(item.mode)]} but the first image "
                f"{first.image.relative_to(path)} is {kind[channels]}; all images of a set must have the "
                "same number of channels"
            )
    return channels


# -------------------------------------------------------------------------------------------- entry


def open_dataset(
    path: Path, options: ImportOptions, progress: ProgressFn | None = None
) -> tuple[DatasetHeader, Iterator[Sample]]:
    """Check the layout, headers and (without a labels file) mask values up front; read pixels lazily."""
    path = require_dir(Path(path), "image folder")
    items, has_split_folders = _discover(path)
    items.sort(key=lambda i: (SPLIT_FOLDERS.index(i.folder_split) if i.folder_split else 0, i.stem))
    channels = _read_headers(items, path)
    subject_rule = _assign_subjects(items, has_split_folders)
    has_masks = items[0].mask is not None

    preprocessing: dict = {
        "normalisation": "integer pixels divided by their type maximum: 8-bit /255, 16-bit /65535",
        "source_bit_depths": sorted({_bit_depth_of(i.mode) for i in items}),
        "source_modes": sorted({i.mode for i in items}),
        "channels_from": str(items[0].image.relative_to(path)),
        "subject": subject_rule,
    }
    binary_255 = False
    read_start = 0.0
    label_file = _read_label_file(path)
    if label_file is not None and not has_masks:
        raise DatasetError(f"{path / label_file[1]} names classes but the folder has no masks/ folder with masks")
    if not has_masks:
        label_names: list[str] = []
        preprocessing["labels_from"] = "none (no masks)"
    elif label_file is not None:
        label_names, preprocessing["labels_from"] = label_file
    else:
        seen = _scan_mask_values(items, _scaled(progress, 0.0, SCAN_SHARE))
        read_start = SCAN_SHARE
        values = np.flatnonzero(seen).tolist()
        if set(values) <= {0, 255} and 255 in values:
            binary_255 = True
            label_names = ["background", "class1"]
            preprocessing["mask_values"] = "binary masks saved as 0/255, read as 0/1"
        else:
            # All-empty masks give just ["background"]: the set then has mask files but no named class.
            label_names = ["background"] + [f"class{i}" for i in range(1, max(values) + 1)]
        preprocessing["labels_from"] = "largest mask value (no labels.txt or labels.json)"

    if options.split_seed is None and has_split_folders:
        splits = {i.subject: str(i.folder_split) for i in items}
        preprocessing["splits"] = "split folders train/, val/, test/"
    else:
        seed = options.split_seed if options.split_seed is not None else 0
        splits = assign_splits(
            [i.subject for i in items],
            seed=seed,
            val_fraction=options.val_fraction,
            test_fraction=options.test_fraction,
        )
        preprocessing["splits"] = f"seeded by subject (seed {seed})"

    header = DatasetHeader(
        modality="other",
        channels=channels,
        label_names=label_names,
        square="pad",
        preprocessing=preprocessing,
    )
    n_classes = len(label_names)

    def samples() -> Iterator[Sample]:
        for item in iterate_with_progress(items, _scaled(progress, read_start, 1.0), "reading image"):
            image = pil_pixels(item.image, lambda pil, p=item.image: _image_pixels(pil, p))
            metadata: dict = {"source": str(item.image.relative_to(path)), "bit_depth": _bit_depth_of(item.mode)}
            mask = None
            if item.mask is not None:
                raw = pil_pixels(item.mask, lambda pil, p=item.mask: _mask_indices(pil, p), "mask")
                if raw.shape != image.shape[:2]:
                    raise DatasetError(f"{item.mask}: mask shape {raw.shape} differs from image {image.shape[:2]}")
                if binary_255:
                    raw = (raw == 255).astype(np.uint8)
                mask = label_mask(raw, str(item.mask.relative_to(path)), n_classes)
                metadata["mask_source"] = str(item.mask.relative_to(path))
            yield Sample(subject=item.subject, split=splits[item.subject], image=image, mask=mask, metadata=metadata)

    return header, samples()
