"""IDRiD "A. Segmentation" importer (RGB fundus JPGs, one binary TIF per lesion). Pure Python, no Django.

Layout as distributed (PATH is either the folder holding ``A. Segmentation`` or that folder itself)::

    A. Segmentation/1. Original Images/a. Training Set/IDRiD_01.jpg ... IDRiD_54.jpg
                                      /b. Testing Set/IDRiD_55.jpg ... IDRiD_81.jpg
                   /2. All Segmentation Groundtruths/a. Training Set/1. Microaneurysms/IDRiD_01_MA.tif
                                                                    /2. Haemorrhages/IDRiD_01_HE.tif
                                                                    /3. Hard Exudates/IDRiD_01_EX.tif
                                                                    /4. Soft Exudates/IDRiD_01_SE.tif
                                                                    /5. Optic Disc/IDRiD_01_OD.tif
                                                    /b. Testing Set/(the same five folders)

People unzip with slightly different names ("1.Original_Images", "a. training set"), so each folder is
found by case-insensitive keywords ("original", "groundtruth", "train", "haemorrhage" ...) and, failing
that, by its leading number or letter ("1.", "a.").

- A missing lesion file means that lesion is absent from the image (SE exists for 40 of the 81 images).
- Masks: any non-zero pixel, in any colour channel, is lesion. The official TIFs are RGB with lesion =
  (255, 0, 0) (grayscale readers see 76); others use 0/1, 0/255 or a palette. Some re-uploads ship the
  masks as JPEG, where compression noise is not lesion: there a pixel counts when a channel reaches 64.
- The five binary masks become one class-index mask, labels ``background, MA, HE, EX, SE, OD``. Where
  masks overlap, the pixel gets the lesion listed first in ``PRECEDENCE`` (MA, HE, EX, SE, OD): the
  optic disc is the background anatomy the lesions sit on, and smaller lesions win over larger ones
  (a microaneurysm at the rim of a haemorrhage stays visible).
- Images: RGB /255, square policy ``fundus`` (crop to the bright fundus disc, then pad).
- Subject: the image id (``IDRiD_01``). Splits: a. Training Set -> train, b. Testing Set -> test, or a
  seeded re-split by subject when ``options.split_seed`` is set.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from imagesets.canonical import normalise_integer_image
from imagesets.importers.base import (
    DatasetError,
    DatasetHeader,
    ImportOptions,
    ProgressFn,
    Sample,
    assign_splits,
    iterate_with_progress,
    require_dir,
)
from imagesets.importers.folder import LOSSY_EXTENSIONS, is_candidate, pil_header, pil_pixels

LABEL_NAMES = ["background", "MA", "HE", "EX", "SE", "OD"]
# Highest precedence first: where masks overlap, a pixel takes the first lesion here that covers it.
PRECEDENCE = ("MA", "HE", "EX", "SE", "OD")
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff"})
MASK_EXTENSIONS = frozenset({".tif", ".tiff", ".png", ".jpg", ".jpeg"})
LOSSY_MASK_THRESHOLD = 64  # below 76, the luma of the official pure-red lesion; above JPEG ringing


@dataclass(frozen=True)
class _Folder:
    """How to recognise one folder: its leading number/letter, keywords and a name for messages."""

    prefix: str
    keywords: tuple[str, ...]
    display: str


SEGMENTATION = _Folder("a", ("segmentation",), "A. Segmentation")
ORIGINALS = _Folder("1", ("original",), "1. Original Images")
GROUNDTRUTHS = _Folder("2", ("groundtruth", "truth"), "2. All Segmentation Groundtruths")
SPLIT_FOLDERS = {
    "train": _Folder("a", ("train",), "a. Training Set"),
    "test": _Folder("b", ("test",), "b. Testing Set"),
}
LESION_FOLDERS = {
    "MA": _Folder("1", ("microaneurysm",), "1. Microaneurysms"),
    "HE": _Folder("2", ("haemorrhage", "hemorrhage", "haemorhage", "hemorhage"), "2. Haemorrhages"),
    "EX": _Folder("3", ("hardexudate",), "3. Hard Exudates"),
    "SE": _Folder("4", ("softexudate",), "4. Soft Exudates"),
    "OD": _Folder("5", ("opticdisc", "opticdisk"), "5. Optic Disc"),
}
_PREFIX_RE = re.compile(r"^\s*([0-9]+|[a-z])(?=$|[\s._)\-])")


def _compact(name: str) -> str:
    """Lower case without spaces, dots, dashes or underscores: '2. Hard_Exudates' -> '2hardexudates'."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _prefix(name: str) -> str | None:
    match = _PREFIX_RE.match(name.lower())
    return match.group(1) if match else None


def _subdirs(parent: Path) -> list[Path]:
    return sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX")))


def _match(parent: Path, folder: _Folder) -> Path | None:
    """The sub-folder of parent that is `folder`: by keyword, ties broken by prefix; else by prefix alone."""
    dirs = _subdirs(parent)
    by_keyword = [d for d in dirs if any(k in _compact(d.name) for k in folder.keywords)]
    if len(by_keyword) > 1:
        by_keyword = [d for d in by_keyword if _prefix(d.name) == folder.prefix] or by_keyword
    if len(by_keyword) == 1:
        return by_keyword[0]
    if len(by_keyword) > 1:
        names = ", ".join(repr(d.name) for d in by_keyword)
        raise DatasetError(f"{parent}: several folders could be {folder.display!r}: {names}")
    by_prefix = [d for d in dirs if _prefix(d.name) == folder.prefix]
    return by_prefix[0] if len(by_prefix) == 1 else None


def _require(parent: Path, folder: _Folder) -> Path:
    found = _match(parent, folder)
    if found is None:
        present = ", ".join(repr(d.name) for d in _subdirs(parent)) or "no folders"
        raise DatasetError(f"IDRiD: no {folder.display!r} folder in {parent} (found {present})")
    return found


def _segmentation_root(path: Path) -> Path:
    """PATH itself when it holds the originals and ground truths, else its 'A. Segmentation' folder."""
    if _match(path, ORIGINALS) is not None and _match(path, GROUNDTRUTHS) is not None:
        return path
    root = _match(path, SEGMENTATION)
    if root is None:
        raise DatasetError(
            f"IDRiD: {path} holds neither 'A. Segmentation' nor its '1. Original Images' and "
            "'2. All Segmentation Groundtruths' folders"
        )
    return root


@dataclass
class _Entry:
    image_id: str
    folder_split: str  # "train" | "test"
    image: Path
    masks: dict[str, Path] = field(default_factory=dict)  # lesion code -> file, only lesions present


def _find_entries(root: Path) -> tuple[list[_Entry], dict[str, int]]:
    originals = _require(root, ORIGINALS)
    groundtruths = _require(root, GROUNDTRUTHS)
    entries: list[_Entry] = []
    seen: dict[str, Path] = {}
    for split, split_folder in SPLIT_FOLDERS.items():
        image_dir = _require(originals, split_folder)
        truth_dir = _require(groundtruths, split_folder)
        split_entries = []
        for file in sorted(p for p in image_dir.iterdir() if is_candidate(p, IMAGE_EXTENSIONS)):
            key = file.stem.lower()
            if key in seen:
                raise DatasetError(f"IDRiD: image id {file.stem} occurs twice: {seen[key]} and {file}")
            seen[key] = file
            split_entries.append(_Entry(image_id=file.stem, folder_split=split, image=file))
        if not split_entries:
            raise DatasetError(f"IDRiD: no images (.jpg) in {image_dir}")
        by_id = {e.image_id.lower(): e for e in split_entries}
        for code, lesion_folder in LESION_FOLDERS.items():
            lesion_dir = _require(truth_dir, lesion_folder)
            for file in sorted(p for p in lesion_dir.iterdir() if is_candidate(p, MASK_EXTENSIONS)):
                stem = file.stem.lower()
                # IDRiD_01_MA.tif; a mask named exactly like its image is accepted too.
                image_id = stem[: -len(code) - 1] if stem.endswith(f"_{code.lower()}") else stem
                entry = by_id.get(image_id)
                if entry is None:
                    continue  # a mask without an image in this split: not ours to import
                if code in entry.masks:
                    raise DatasetError(f"IDRiD: two {code} masks for {entry.image_id}: {entry.masks[code]} and {file}")
                entry.masks[code] = file
        entries.extend(split_entries)
    counts = {code: sum(code in e.masks for e in entries) for code in LESION_FOLDERS}
    return entries, counts


def _rgb_pixels(pil: PILImage.Image) -> np.ndarray:
    rgb = pil if pil.mode == "RGB" else pil.convert("RGB")
    return normalise_integer_image(np.asarray(rgb, dtype=np.uint8))


def _lesion_pixels(pil: PILImage.Image, lossy: bool) -> np.ndarray:
    """Boolean lesion map: a pixel is lesion when any colour channel is non-zero (>= 64 in a JPEG)."""
    if pil.mode in ("P", "PA"):
        # Judge a palette mask by the colours it shows, so a palette that maps index 1 to black is background.
        pil = pil.convert("RGB")
    pixels = np.asarray(pil)
    if pixels.ndim == 3:
        # Drop alpha (RGBA, LA): a fully opaque background would otherwise count as lesion.
        colour = 1 if pil.mode in ("LA", "La") else 3 if pil.mode in ("RGBA", "RGBa", "RGBX") else pixels.shape[2]
        pixels = pixels[..., :colour].max(axis=2)
    return pixels >= LOSSY_MASK_THRESHOLD if lossy else pixels > 0


def open_dataset(
    path: Path, options: ImportOptions, progress: ProgressFn | None = None
) -> tuple[DatasetHeader, Iterator[Sample]]:
    """Find every image and lesion file up front; decode them lazily, one image at a time."""
    root = _segmentation_root(require_dir(Path(path), "IDRiD folder"))
    entries, lesion_counts = _find_entries(root)
    if options.split_seed is None:
        splits = {e.image_id: e.folder_split for e in entries}
        split_rule = "a. Training Set -> train, b. Testing Set -> test"
    else:
        splits = assign_splits(
            [e.image_id for e in entries],
            seed=options.split_seed,
            val_fraction=options.val_fraction,
            test_fraction=options.test_fraction,
        )
        split_rule = f"seeded by image (seed {options.split_seed})"
    header = DatasetHeader(
        modality="fundus",
        channels=3,
        label_names=list(LABEL_NAMES),
        square="fundus",
        preprocessing={
            "normalisation": "8-bit RGB divided by 255",
            "square_detail": "fundus: crop to the region brighter than the black surround, then zero-pad",
            "mask_precedence": list(PRECEDENCE),
            "mask_overlap": "a pixel covered by several lesion masks takes the first lesion in mask_precedence",
            "mask_binarisation": "any non-zero pixel in any colour channel (JPEG masks: a channel >= 64)",
            "missing_lesion_file": "lesion absent from that image",
            "lesion_files": lesion_counts,
            "splits": split_rule,
            "source_root": root.name,
        },
    )
    label_of = {code: LABEL_NAMES.index(code) for code in PRECEDENCE}

    def samples() -> Iterator[Sample]:
        for entry in iterate_with_progress(entries, progress, "reading fundus image"):
            image_mode, image_size = pil_header(entry.image)
            image = pil_pixels(entry.image, _rgb_pixels)
            combined = np.zeros(image.shape[:2], dtype=np.uint8)
            overlap = np.zeros(image.shape[:2], dtype=np.uint8)
            # Paint the lowest precedence first so higher-precedence lesions overwrite it.
            for code in reversed(PRECEDENCE):
                mask_path = entry.masks.get(code)
                if mask_path is None:
                    continue
                _, mask_size = pil_header(mask_path, "mask")
                if mask_size != image_size:
                    raise DatasetError(
                        f"{mask_path}: the {code} mask is {mask_size[0]}x{mask_size[1]} but its image "
                        f"{entry.image.name} is {image_size[0]}x{image_size[1]} (width x height)"
                    )
                lossy = mask_path.suffix.lower() in LOSSY_EXTENSIONS
                lesion = pil_pixels(mask_path, lambda pil, lossy=lossy: _lesion_pixels(pil, lossy), "mask")
                combined[lesion] = label_of[code]
                overlap += lesion
            yield Sample(
                subject=entry.image_id,
                split=splits[entry.image_id],
                image=image,
                mask=combined,
                metadata={
                    "source": str(entry.image.relative_to(root)),
                    "source_mode": image_mode,
                    "lesions_present": [c for c in LABEL_NAMES[1:] if c in entry.masks],
                    "lesions_absent": [c for c in LABEL_NAMES[1:] if c not in entry.masks],
                    "overlap_pixels": int((overlap > 1).sum()),
                },
            )

    return header, samples()
