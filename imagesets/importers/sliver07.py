"""SLiver07 liver CT importer (MetaImage .mhd + .raw, read with SimpleITK). Pure Python, no Django.

PATH holds ``liver-origNNN.mhd`` scans and ``liver-segNNN.mhd`` reference segmentations, each with its
``.raw`` data file, either directly or one folder down (``training/``, ``training-part1/``, or scans and
labels in sibling folders such as ``training-scans/`` and ``training-labels/``). Every scan needs its
segmentation and every segmentation its scan. Every axial slice becomes one sample.
"""

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagesets.canonical import CanonicalError, normalise_window
from imagesets.importers.base import (
    DatasetError,
    DatasetHeader,
    ImportOptions,
    ProgressFn,
    Sample,
    assign_splits,
    finite_or_error,
    require_dir,
)

LABEL_NAMES = ["background", "liver"]
# The usual abdominal/liver window: [-140, 260] HU maps to [0, 1].
WINDOW = {"center": 60, "width": 400}
# Reorient every volume to this DICOM orientation code: the identity direction matrix (+x towards the
# patient's left, +y posterior, +z superior). Rows then run anterior -> posterior and columns patient
# right -> left, i.e. the usual radiological axial view.
TARGET_ORIENTATION = "LPS"
ORIENTATION = (
    "reoriented with SimpleITK DICOMOrient to LPS (identity direction): rows anterior->posterior, "
    "columns patient right->left (radiological view), slices inferior->superior"
)
SCAN_RE = re.compile(r"^liver-orig(\d+)\.mhd$", re.IGNORECASE)
SEG_RE = re.compile(r"^liver-seg(\d+)\.mhd$", re.IGNORECASE)
# Bytes per voxel of the MetaImage element types we can size-check; others are left to SimpleITK.
ELEMENT_BYTES = {
    "MET_CHAR": 1,
    "MET_UCHAR": 1,
    "MET_SHORT": 2,
    "MET_USHORT": 2,
    "MET_INT": 4,
    "MET_UINT": 4,
    "MET_FLOAT": 4,
    "MET_DOUBLE": 8,
}


@dataclass(frozen=True)
class _Case:
    subject: str  # the scan number as written, e.g. "001"
    scan: Path
    seg: Path


def open_dataset(
    path: Path, options: ImportOptions, progress: ProgressFn | None = None
) -> tuple[DatasetHeader, Iterator[Sample]]:
    """Pair scans with segmentations and check their headers up front; read the voxels lazily."""
    root = require_dir(Path(path), "SLiver07 folder")
    cases = _find_cases(root)
    for case in cases:
        _check_header(case.scan)
        _check_header(case.seg)
    # SLiver07 has no public test masks, so there is no official split to keep: always split by subject.
    seed = 0 if options.split_seed is None else options.split_seed
    splits = assign_splits(
        [c.subject for c in cases], seed=seed, val_fraction=options.val_fraction, test_fraction=options.test_fraction
    )
    header = DatasetHeader(
        modality="liver_ct",
        channels=1,
        label_names=list(LABEL_NAMES),
        square="pad",
        preprocessing={
            "normalisation": "hounsfield window",
            "window": dict(WINDOW),
            "intensity_units": "voxel values as stored, taken as Hounsfield units",
            "orientation": ORIENTATION,
            "slices": "every axial slice (along z)",
            "segmentation_values": "0 background, 1 liver; copies stored as 0/255 are mapped to 0/1",
            "splits": f"split by subject with seed {seed}",
        },
    )
    return header, _samples(root, cases, splits, progress)


def _mhd_files(root: Path) -> list[Path]:
    """.mhd files in root and its direct sub-folders (one level, as the archives are laid out)."""
    files = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() == ".mhd"]
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith((".", "__MACOSX")):
            files.extend(p for p in child.iterdir() if p.is_file() and p.suffix.lower() == ".mhd")
    return sorted(files)


def _find_cases(root: Path) -> list[_Case]:
    scans: dict[str, list[Path]] = defaultdict(list)
    segs: dict[str, list[Path]] = defaultdict(list)
    for file in _mhd_files(root):
        if m := SCAN_RE.match(file.name):
            scans[m.group(1)].append(file)
        elif m := SEG_RE.match(file.name):
            segs[m.group(1)].append(file)
    if not scans and not segs:
        raise DatasetError(
            f"No SLiver07 scans found in {root} (or its sub-folders): expected liver-origNNN.mhd files "
            "with liver-segNNN.mhd segmentations"
        )
    for number, paths in [*scans.items(), *segs.items()]:
        if len(paths) > 1:
            # e.g. a mirror whose test scans reuse the training numbers: the subject would be ambiguous.
            listed = ", ".join(str(p.relative_to(root)) for p in paths)
            raise DatasetError(f"Scan number {number} appears more than once ({listed}); import one folder at a time")
    cases = []
    for number, (scan,) in sorted(scans.items()):
        if number not in segs:
            raise DatasetError(
                f"{scan}: no matching liver-seg{number}.mhd segmentation (every scan needs one; "
                "SLiver07 test scans have no public reference, so import only the training data)"
            )
        cases.append(_Case(subject=number, scan=scan, seg=segs[number][0]))
    for number, (seg,) in sorted(segs.items()):
        if number not in scans:
            raise DatasetError(f"{seg}: segmentation without a matching liver-orig{number}.mhd scan")
    return cases


def _read_header(path: Path) -> dict[str, str]:
    try:
        with path.open("rb") as fh:
            head = fh.read(65536)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the MetaImage header ({exc})") from None
    fields: dict[str, str] = {}
    for raw_line in head.decode("latin-1").splitlines():
        line = raw_line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or not key.strip().replace("_", "").isalnum():
            raise DatasetError(f"{path}: not a valid MetaImage header (line {line[:60]!r})")
        fields[key.strip()] = value.strip()
        if key.strip() == "ElementDataFile":
            break  # always the last field; LOCAL data (binary) may follow it
    return fields


def _check_header(path: Path) -> None:
    """Catch the common problems (not 3-D, missing or truncated .raw) with clearer messages than ITK's."""
    fields = _read_header(path)
    for key in ("NDims", "DimSize", "ElementType", "ElementDataFile"):
        if key not in fields:
            raise DatasetError(f"{path}: not a valid MetaImage header (no {key} field)")
    try:
        dims = [int(v) for v in fields["DimSize"].split()]
        ndims = int(fields["NDims"])
    except ValueError:
        raise DatasetError(f"{path}: not a valid MetaImage header (bad NDims or DimSize)") from None
    if ndims != 3 or len(dims) != 3:
        raise DatasetError(f"{path}: expected a 3-D volume, the header says NDims = {ndims}, DimSize = {dims}")
    data_file = fields["ElementDataFile"]
    if data_file.upper() in ("LOCAL", "LIST") or "%" in data_file:
        return  # data inside the header file, or a file list: leave the checks to SimpleITK
    raw = path.parent / data_file
    if not raw.is_file():
        raise DatasetError(f"{path}: its data file {data_file} is missing (expected {raw})")
    compressed = fields.get("CompressedData", "False").lower() == "true"
    element = ELEMENT_BYTES.get(fields["ElementType"].upper())
    channels = int(fields.get("ElementNumberOfChannels", "1") or 1)
    if element is None or compressed:
        return
    expected = int(np.prod(dims)) * element * channels
    actual = raw.stat().st_size
    if actual < expected:
        raise DatasetError(
            f"{raw}: data file is truncated ({actual:,} bytes, the header of {path.name} needs {expected:,})"
        )


def _read_volume(path: Path):
    """Read a MetaImage as a SimpleITK image reoriented to TARGET_ORIENTATION."""
    import SimpleITK as sitk  # imported here so listing the importers does not pay for SimpleITK

    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        # ITK messages start with a C++ source location; keep the lines that say what went wrong.
        lines = [ln for ln in str(exc).splitlines() if ln.strip() and "Exception thrown" not in ln]
        raise DatasetError(f"{path}: cannot read MetaImage ({' '.join(lines)[-300:]})") from None
    if image.GetDimension() != 3:
        raise DatasetError(f"{path}: expected a 3-D volume, got {image.GetDimension()}-D")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise DatasetError(f"{path}: expected one value per voxel, got {image.GetNumberOfComponentsPerPixel()}")
    # Permutes and flips axes (no resampling) so every volume is stored the same way round, whatever its
    # direction cosines; spacing is permuted along with the axes.
    return sitk.DICOMOrient(image, TARGET_ORIENTATION)


def _segmentation(array: np.ndarray, path: Path) -> np.ndarray:
    values = set(np.unique(array).tolist())
    if values <= {0, 1}:
        return array.astype(np.uint8)
    if values <= {0, 255}:
        # Derived copies sometimes store the liver as 255 (8-bit "white").
        return (array == 255).astype(np.uint8)
    shown = sorted(values)[:10]
    raise DatasetError(f"{path}: unexpected segmentation values {shown}; expected 0/1 (or 0/255)")


def _samples(root: Path, cases: list[_Case], splits: dict[str, str], progress: ProgressFn | None) -> Iterator[Sample]:
    import SimpleITK as sitk

    total = len(cases)
    for i, case in enumerate(cases):
        if progress is not None:
            progress(i / total, f"scan {case.subject} ({i + 1}/{total})")
        image = _read_volume(case.scan)
        seg = _read_volume(case.seg)
        if image.GetSize() != seg.GetSize():
            raise DatasetError(
                f"{case.seg}: segmentation size {seg.GetSize()} differs from the scan's {image.GetSize()} "
                f"({case.scan.name}; sizes are x, y, z)"
            )
        hu = sitk.GetArrayFromImage(image)  # (z, y, x)
        if not (np.issubdtype(hu.dtype, np.integer) or np.issubdtype(hu.dtype, np.floating)):
            raise DatasetError(f"{case.scan}: unsupported voxel type {hu.dtype}")
        finite_or_error(hu, str(case.scan))
        labels = _segmentation(sitk.GetArrayFromImage(seg), case.seg)
        sx, sy, sz = (float(s) for s in image.GetSpacing())
        metadata = {
            "pixel_spacing_mm": [sy, sx],  # (row, column)
            "slice_thickness_mm": sz,
            "source_file": case.scan.relative_to(root).as_posix(),
            "mask_file": case.seg.relative_to(root).as_posix(),
        }
        for z in range(hu.shape[0]):
            # The window does not depend on the volume, so slice by slice gives the same result while
            # avoiding a float64 copy of a whole 512 x 512 x 300 scan.
            try:
                scaled = normalise_window(hu[z], WINDOW["center"], WINDOW["width"])
            except CanonicalError as exc:
                raise DatasetError(f"{case.scan}: {exc}") from None
            yield Sample(
                subject=case.subject,
                split=splits[case.subject],
                image=scaled,
                mask=labels[z],
                slice_index=z,
                metadata=dict(metadata),
            )
