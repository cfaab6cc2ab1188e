"""What every importer yields, and helpers they share. Pure Python/NumPy, no Django.

An importer is a function ``open_dataset(path, options) -> (DatasetHeader, Iterator[Sample])``.
It validates what it can up front (folder layout, files present) and raises DatasetError with a
message a user can act on; the iterator may raise DatasetError later for a corrupt file. The caller
(imagesets.services) canonicalises, writes and commits everything atomically.
"""

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imagesets.canonical import SquarePolicy

ProgressFn = Callable[[float, str], None]


class DatasetError(ValueError):
    """Bad input: the message is shown to the user as is."""


@dataclass(frozen=True)
class ImportOptions:
    size: int = 128
    skip_empty: bool = False
    # None keeps the dataset's own train/test division where it has one; an int re-splits by subject.
    split_seed: int | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    # Phantoms only.
    subjects: int = 24
    seed: int = 0


@dataclass
class Sample:
    subject: str
    split: str  # "train" | "val" | "test"
    image: np.ndarray  # (H, W) or (H, W, 3) float32 in [0, 1], native size
    mask: np.ndarray | None = None  # (H, W) uint8 class indices, same H, W as image
    slice_index: int = 0
    frame: int | None = None
    metadata: dict = field(default_factory=dict)  # JSON-able: pixel_spacing_mm, source file, phase


@dataclass
class DatasetHeader:
    modality: str  # an imagesets.models.Modality value
    channels: int
    label_names: list[str]  # index 0 is background; [] when the set has no masks
    square: SquarePolicy
    preprocessing: dict  # recorded on the ImageSet: normalisation, window, source orientation ...


def assign_splits(subjects: Sequence[str], *, seed: int, val_fraction: float, test_fraction: float) -> dict[str, str]:
    """Seeded split by subject, so a patient's slices always stay together."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise DatasetError("val and test fractions must be in [0, 1) and sum to less than 1")
    ordered = sorted(set(subjects))
    random.Random(seed).shuffle(ordered)
    n = len(ordered)
    n_test = round(n * test_fraction)
    n_val = round(n * val_fraction)
    if n >= 3:
        # Keep at least one subject in each requested split on small sets.
        n_test = max(n_test, 1 if test_fraction > 0 else 0)
        n_val = max(n_val, 1 if val_fraction > 0 else 0)
    splits = {}
    for i, subject in enumerate(ordered):
        splits[subject] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return splits


def require_dir(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{what} not found: {path}")
    if not path.is_dir():
        raise DatasetError(f"{what} is not a folder: {path}")
    return path


def finite_or_error(array: np.ndarray, source: str) -> np.ndarray:
    if not np.all(np.isfinite(array)):
        raise DatasetError(f"{source}: contains NaN or infinite values")
    return array


def label_mask(array: np.ndarray, source: str, n_classes: int) -> np.ndarray:
    """Float or integer label volume -> uint8 class indices, refusing unknown values."""
    is_float = np.issubdtype(array.dtype, np.floating)
    if is_float and (not np.all(np.isfinite(array)) or not np.all(array == np.round(array))):
        raise DatasetError(f"{source}: mask values must be whole class indices")
    values = np.unique(array)
    bad = [v for v in values.tolist() if v < 0 or v >= n_classes]
    if bad:
        raise DatasetError(f"{source}: unknown label value(s) {bad[:10]}; expected 0..{n_classes - 1}")
    return array.astype(np.uint8)


def iterate_with_progress(items: Sequence, progress: ProgressFn | None, label: str) -> Iterator:
    total = max(len(items), 1)
    for i, item in enumerate(items):
        if progress is not None:
            progress(i / total, f"{label} {i + 1}/{len(items)}")
        yield item
