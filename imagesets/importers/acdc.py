"""ACDC cardiac cine-MRI importer (NIfTI, read with nibabel). Pure Python, no Django, never writes files.

Layout (after unzipping; an extra ``database/`` level, as in the current archive, is accepted)::

    PATH/training/patient001/Info.cfg
                            /patient001_frame01.nii.gz      ED frame (ED: 1 in Info.cfg)
                            /patient001_frame01_gt.nii.gz   its labels
                            /patient001_frame12.nii.gz      ES frame
                            /patient001_frame12_gt.nii.gz
                            /patient001_4d.nii.gz           full cine, ignored
    PATH/testing/patient101/...

PATH may also hold ``patientNNN/`` folders directly; they are all taken as training data. Every slice
along the last axis of the ED and the ES frame becomes one sample. Masks are required.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagesets.canonical import CanonicalError, normalise_percentiles
from imagesets.importers.base import (
    DatasetError,
    DatasetHeader,
    ImportOptions,
    ProgressFn,
    Sample,
    assign_splits,
    finite_or_error,
    label_mask,
    require_dir,
)

LABEL_NAMES = ["background", "RV", "MYO", "LV"]
PERCENTILES = (0.5, 99.5)
ORIENTATION = "nibabel array (X, Y, Z) transposed per slice: rows = Y, columns = X; no reorientation to RAS"
PATIENT_RE = re.compile(r"^patient\d+$")
SPLIT_FOLDERS = {"training": "train", "testing": "test"}


@dataclass(frozen=True)
class _Frame:
    phase: str  # "ED" | "ES"
    number: int  # 1-based frame number, as in Info.cfg and the file name
    image: Path
    mask: Path


@dataclass(frozen=True)
class _Patient:
    subject: str
    folder_split: str  # split implied by the folder: "train" (training/ or bare) or "test" (testing/)
    folder: Path
    group: str
    frames: tuple[_Frame, ...]


def open_dataset(
    path: Path, options: ImportOptions, progress: ProgressFn | None = None
) -> tuple[DatasetHeader, Iterator[Sample]]:
    """Validate the layout and every patient's files up front; read the volumes lazily."""
    root = _find_root(require_dir(Path(path), "ACDC folder"))
    patients = _find_patients(root)
    if options.split_seed is None:
        splits = {p.subject: p.folder_split for p in patients}
    else:
        splits = assign_splits(
            [p.subject for p in patients],
            seed=options.split_seed,
            val_fraction=options.val_fraction,
            test_fraction=options.test_fraction,
        )
    header = DatasetHeader(
        modality="cardiac_mri",
        channels=1,
        label_names=list(LABEL_NAMES),
        square="pad",
        preprocessing={
            "normalisation": "percentiles",
            "percentiles": list(PERCENTILES),
            "normalisation_scope": "per volume (each ED or ES frame separately), then clipped to [0, 1]",
            "orientation": ORIENTATION,
            "slices": "every slice along the last axis of the ED and ES frames",
            "labels": "0 background, 1 RV cavity, 2 myocardium, 3 LV cavity",
            "splits": "training/ -> train, testing/ -> test"
            if options.split_seed is None
            else f"re-split by patient with seed {options.split_seed}",
        },
    )
    return header, _samples(root, patients, splits, progress)


def _find_root(path: Path) -> Path:
    """The folder holding training/, testing/ or patientNNN/ folders: PATH itself or a single level below."""
    if _looks_like_root(path):
        return path
    children = [c for c in sorted(path.iterdir()) if c.is_dir() and not c.name.startswith((".", "__MACOSX"))]
    candidates = [c for c in children if _looks_like_root(c)]
    if len(candidates) == 1:
        # e.g. the archive's database/ level, or a zip's top-level folder.
        return candidates[0]
    if len(candidates) > 1:
        names = ", ".join(c.name for c in candidates)
        raise DatasetError(f"{path}: several sub-folders look like ACDC data ({names}); point at one of them")
    raise DatasetError(
        f"No ACDC patients found in {path}: expected training/ and/or testing/ folders "
        "(or patientNNN/ folders) containing patientNNN/Info.cfg"
    )


def _looks_like_root(path: Path) -> bool:
    if any((path / name).is_dir() for name in SPLIT_FOLDERS):
        return True
    return any(c.is_dir() and PATIENT_RE.match(c.name) for c in path.iterdir())


def _find_patients(root: Path) -> list[_Patient]:
    split_dirs = [(root / name, split) for name, split in SPLIT_FOLDERS.items() if (root / name).is_dir()]
    if not split_dirs:
        split_dirs = [(root, "train")]
    patients: dict[str, _Patient] = {}
    for folder, split in split_dirs:
        for patient_dir in sorted(folder.iterdir()):
            if not (patient_dir.is_dir() and PATIENT_RE.match(patient_dir.name)):
                continue
            if patient_dir.name in patients:
                raise DatasetError(
                    f"{patient_dir.name} appears twice: in {patients[patient_dir.name].folder} and {patient_dir}"
                )
            patients[patient_dir.name] = _read_patient(patient_dir, split, is_testing=folder.name == "testing")
    if not patients:
        where = " and ".join(str(f) for f, _ in split_dirs)
        raise DatasetError(f"No ACDC patients found in {where}: expected patientNNN/ folders with an Info.cfg")
    return [patients[name] for name in sorted(patients)]


def _read_info(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise DatasetError(f"{path}: Info.cfg is missing")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read Info.cfg ({exc})") from None
    info = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def _frame_number(info: dict[str, str], key: str, path: Path) -> int:
    raw = info.get(key)
    if raw is None:
        raise DatasetError(f"{path}: Info.cfg has no '{key}:' line (the {key} frame number)")
    try:
        # Some copies write frame numbers as floats ("1.0").
        number = float(raw)
    except ValueError:
        raise DatasetError(f"{path}: '{key}: {raw}' is not a frame number") from None
    if number != int(number) or number < 1:
        raise DatasetError(f"{path}: '{key}: {raw}' is not a frame number (1-based)")
    return int(number)


def _nifti(folder: Path, stem: str) -> Path:
    """The .nii.gz file for stem, or an uncompressed .nii copy; the .nii.gz path if neither exists."""
    gz = folder / f"{stem}.nii.gz"
    if not gz.exists() and (folder / f"{stem}.nii").exists():
        return folder / f"{stem}.nii"
    return gz


def _read_patient(folder: Path, split: str, *, is_testing: bool) -> _Patient:
    info_path = folder / "Info.cfg"
    info = _read_info(info_path)
    numbers = {phase: _frame_number(info, phase, info_path) for phase in ("ED", "ES")}
    frames = []
    for phase, number in numbers.items():
        if phase == "ES" and number == numbers["ED"]:
            continue  # the same volume twice would only duplicate samples
        image = _nifti(folder, f"{folder.name}_frame{number:02d}")
        mask = _nifti(folder, f"{folder.name}_frame{number:02d}_gt")
        if not image.is_file():
            raise DatasetError(f"{image}: {phase} frame file is missing (Info.cfg says {phase}: {number})")
        if not mask.is_file():
            hint = " (some ACDC downloads ship the testing set without ground truth)" if is_testing else ""
            raise DatasetError(f"{mask}: ground-truth mask is missing; ACDC imports need masks{hint}")
        frames.append(_Frame(phase=phase, number=number, image=image, mask=mask))
    return _Patient(
        subject=folder.name, folder_split=split, folder=folder, group=info.get("Group", ""), frames=tuple(frames)
    )


def _load_nifti(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """Array and voxel sizes; any reading problem (truncated gzip, bad header ...) becomes a DatasetError."""
    import nibabel as nib  # imported here so listing the importers does not pay for nibabel

    try:
        img = nib.load(str(path))
        # Force the read inside the try: nibabel loads lazily, so a truncated file only fails here.
        data = np.asanyarray(img.dataobj)
        # Zooms are float32 in the header; round so 1.4 is not stored as 1.399999976158.
        zooms = tuple(round(float(z), 6) for z in img.header.get_zooms())
    except Exception as exc:  # nibabel raises EOFError, zlib.error, OSError, ImageFileError, ValueError ...
        raise DatasetError(
            f"{path}: cannot read NIfTI file, truncated or corrupt? ({type(exc).__name__}: {exc})"
        ) from None
    # Drop trailing singleton axes such as (X, Y, Z, 1); anything else that is not 3-D is refused.
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DatasetError(f"{path}: expected a 3-D volume (X, Y, Z), got shape {tuple(data.shape)}")
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise DatasetError(f"{path}: unsupported voxel type {data.dtype}")
    return data, zooms


def _samples(
    root: Path, patients: list[_Patient], splits: dict[str, str], progress: ProgressFn | None
) -> Iterator[Sample]:
    total = len(patients)
    for i, patient in enumerate(patients):
        if progress is not None:
            progress(i / total, f"patient {patient.subject} ({i + 1}/{total})")
        for frame in patient.frames:
            yield from _frame_samples(root, patient, frame, splits[patient.subject])


def _frame_samples(root: Path, patient: _Patient, frame: _Frame, split: str) -> Iterator[Sample]:
    volume, zooms = _load_nifti(frame.image)
    labels, _ = _load_nifti(frame.mask)
    if volume.shape != labels.shape:
        raise DatasetError(
            f"{frame.mask}: mask shape {tuple(labels.shape)} differs from image shape {tuple(volume.shape)} "
            f"of {frame.image.name}"
        )
    finite_or_error(volume, str(frame.image))
    labels = label_mask(labels, str(frame.mask), len(LABEL_NAMES))
    try:
        scaled, stats = normalise_percentiles(volume, *PERCENTILES)
    except CanonicalError as exc:
        raise DatasetError(f"{frame.image}: {exc}") from None
    zx, zy = zooms[0], zooms[1]
    thickness = zooms[2] if len(zooms) > 2 else None
    source = frame.image.relative_to(root).as_posix()
    for z in range(scaled.shape[2]):
        # Same transpose for image and mask, so they stay aligned: rows follow Y, columns follow X.
        yield Sample(
            subject=patient.subject,
            split=split,
            image=np.ascontiguousarray(scaled[:, :, z].T),
            mask=np.ascontiguousarray(labels[:, :, z].T),
            slice_index=z,
            frame=frame.number,
            metadata={
                "pixel_spacing_mm": [zy, zx],  # (row, column) after the transpose
                "slice_thickness_mm": thickness,
                "source_file": source,
                "mask_file": frame.mask.relative_to(root).as_posix(),
                "phase": frame.phase,
                "group": patient.group,
                "intensity_percentiles": [stats["p_low"], stats["p_high"]],
            },
        )
