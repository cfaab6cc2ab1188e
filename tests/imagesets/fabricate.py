"""Tiny fake datasets written in the real on-disk formats (ACDC NIfTI, SLiver07 MetaImage).

The real datasets may not be redistributed, so tests fabricate look-alikes: same file names, folder
layout, header fields and voxel types, with small arrays. Shapes follow each library's own convention:
ACDC volumes are nibabel (X, Y, Z) arrays, SLiver07 volumes are SimpleITK / NumPy (z, y, x) arrays.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------------------------------------- ACDC

ACDC_ZOOMS = (1.5625, 1.40625, 10.0)  # anisotropic in-plane on purpose, so a row/column mix-up shows
ACDC_INTENSITY = {0: 60, 1: 500, 2: 250, 3: 900}  # background, RV, MYO, LV (LV blood pool brightest)


@dataclass
class AcdcPatient:
    subject: str
    folder: Path
    split_folder: str  # "training" | "testing" | "" (patients directly under the root)
    ed: int
    es: int
    group: str
    # phase -> (image (X, Y, Z) as written, labels (X, Y, Z) as written)
    volumes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def acdc_labels(shape: tuple[int, int, int], phase: str = "ED", empty_slices: tuple[int, ...] = (-1,)) -> np.ndarray:
    """(X, Y, Z) uint8 labels: LV disc (3) in a MYO ring (2) with an RV disc (1) beside it.

    The heart sits off-centre so a flipped or transposed mask would not line up with its image; the LV is
    smaller at ES (contraction). Slices listed in empty_slices (default: the last, like an apical slice
    beyond the heart) carry no labels.
    """
    nx, ny, nz = shape
    x, y = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    cx, cy = nx * 0.65, ny * 0.4
    r_lv = max(nx, ny) * (0.14 if phase == "ED" else 0.10)
    r_myo = r_lv + max(nx, ny) * 0.07
    d_lv = np.hypot(x - cx, y - cy)
    d_rv = np.hypot(x - (cx - r_myo - 2.5), y - cy)
    plane = np.zeros((nx, ny), np.uint8)
    plane[d_rv <= max(nx, ny) * 0.12] = 1
    plane[d_lv <= r_myo] = 2
    plane[d_lv <= r_lv] = 3
    labels = np.repeat(plane[:, :, None], nz, axis=2)
    for z in empty_slices:
        labels[:, :, z] = 0
    return labels


def acdc_image(labels: np.ndarray, dtype: type | str = np.int16, seed: int = 0) -> np.ndarray:
    """A cine-MRI-like volume: each label region gets its own brightness plus a little noise."""
    rng = np.random.default_rng(seed)
    image = np.zeros(labels.shape, np.float64)
    for label, value in ACDC_INTENSITY.items():
        image[labels == label] = value
    image += rng.normal(0.0, 15.0, labels.shape)
    image = np.clip(image, 0, None)
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(np.dtype(dtype))
        if info.max < 1000:  # uint8 data: rescale to the type's range
            image = image * (info.max / 1000.0)
        return np.round(image).astype(dtype)
    return image.astype(dtype)


def write_nifti(path: Path, array: np.ndarray, zooms: tuple[float, ...] = ACDC_ZOOMS) -> Path:
    """NIfTI-1 with a scaling affine like ACDC's (voxel sizes on the diagonal, a plausible origin)."""
    import nibabel as nib

    affine = np.diag([*zooms[:3], 1.0])
    affine[:3, 3] = [-0.5 * zooms[0] * array.shape[0], -0.5 * zooms[1] * array.shape[1], 0.0]
    img = nib.Nifti1Image(array, affine)
    img.header.set_zooms(tuple(zooms[:3]) + tuple(img.header.get_zooms()[3:]))
    nib.save(img, str(path))
    return path


def write_info_cfg(folder: Path, *, ed: int, es: int, group: str, nb_frames: int, extra: str = "") -> Path:
    path = folder / "Info.cfg"
    path.write_text(f"ED: {ed}\nES: {es}\nGroup: {group}\nHeight: 184.0\nNbFrame: {nb_frames}\nWeight: 95.0\n{extra}")
    return path


def make_acdc(
    root: Path,
    n_train: int = 2,
    n_test: int = 1,
    shape: tuple[int, int, int] = (20, 24, 3),
    dtype: type | str = np.int16,
    *,
    zooms: tuple[float, float, float] = ACDC_ZOOMS,
    layout: str = "standard",
    ed: int = 1,
    es: int = 3,
    nb_frames: int = 4,
    test_gt: bool = True,
    write_4d: bool = True,
    groups: tuple[str, ...] = ("DCM", "HCM", "MINF", "NOR", "RV"),
) -> list[AcdcPatient]:
    """Write an ACDC look-alike under root and return what was written.

    layout: "standard" (root/training, root/testing), "database" (root/database/training ...: the current
    archive) or "flat" (patientNNN folders directly under root, n_test ignored). Every patient gets an
    Info.cfg, ED and ES frames with _gt masks (last slice empty) and, optionally, a small _4d cine.
    """
    root = Path(root)
    base = root / "database" if layout == "database" else root
    plan = [("training", i + 1) for i in range(n_train)]
    if layout != "flat":
        plan += [("testing", 101 + i) for i in range(n_test)]
    patients = []
    for k, (split_folder, number) in enumerate(plan):
        subject = f"patient{number:03d}"
        folder = (base if layout == "flat" else base / split_folder) / subject
        folder.mkdir(parents=True, exist_ok=True)
        group = groups[k % len(groups)]
        write_info_cfg(folder, ed=ed, es=es, group=group, nb_frames=nb_frames)
        patient = AcdcPatient(subject, folder, "" if layout == "flat" else split_folder, ed, es, group)
        for phase, frame in (("ED", ed), ("ES", es)):
            labels = acdc_labels(shape, phase)
            image = acdc_image(labels, dtype, seed=number * 10 + frame)
            write_nifti(folder / f"{subject}_frame{frame:02d}.nii.gz", image, zooms)
            if split_folder == "training" or test_gt:
                write_nifti(folder / f"{subject}_frame{frame:02d}_gt.nii.gz", labels, zooms)
            patient.volumes[phase] = (image, labels)
        if write_4d:
            cine = np.stack([patient.volumes["ED" if t + 1 == ed else "ES"][0] for t in range(nb_frames)], axis=3)
            write_nifti(folder / f"{subject}_4d.nii.gz", cine, zooms)
        patients.append(patient)
    return patients


# ------------------------------------------------------------------------------------------ SLiver07

SLIVER_SPACING = (0.7, 0.75, 2.5)  # x, y, z in mm, as SimpleITK orders them
MET_TYPES = {"int16": "MET_SHORT", "uint16": "MET_USHORT", "uint8": "MET_UCHAR", "float32": "MET_FLOAT"}


@dataclass
class SliverCase:
    subject: str
    scan: Path
    seg: Path
    voxels: np.ndarray  # (z, y, x) values as stored (HU for int16/float32), before any direction flip
    labels: np.ndarray  # (z, y, x) 0/1


def sliver_labels(shape: tuple[int, int, int], empty_slices: tuple[int, ...] = (0,)) -> np.ndarray:
    """(z, y, x) 0/1 liver: an off-centre ellipse on the patient's right (image left), growing with z."""
    nz, ny, nx = shape
    y, x = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    labels = np.zeros(shape, np.uint8)
    for z in range(nz):
        scale = 0.6 + 0.4 * z / max(nz - 1, 1)
        inside = ((x - nx * 0.3) / (nx * 0.18 * scale)) ** 2 + ((y - ny * 0.4) / (ny * 0.22 * scale)) ** 2 <= 1
        labels[z][inside] = 1
    for z in empty_slices:
        labels[z] = 0
    return labels


def sliver_hu(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """HU volume: air (-1000) around a soft-tissue body (30 HU) with an enhanced liver (130 HU)."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = labels.shape
    y, x = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    body = ((x - nx / 2) / (nx * 0.48)) ** 2 + ((y - ny / 2) / (ny * 0.45)) ** 2 <= 1
    hu = np.full(labels.shape, -1000.0)
    hu[:, body] = 30.0
    hu[labels == 1] = 130.0
    return hu + rng.normal(0.0, 8.0, labels.shape)


def _direction_matrix(flips: tuple[bool, bool, bool]) -> tuple[float, ...]:
    d = np.diag([-1.0 if f else 1.0 for f in flips])
    return tuple(d.ravel().tolist())


def write_metaimage(
    path: Path,
    array_zyx: np.ndarray,
    *,
    spacing: tuple[float, float, float] = SLIVER_SPACING,
    flips: tuple[bool, bool, bool] = (False, False, False),
    big_endian: bool = False,
) -> Path:
    """Write path (.mhd) + its .raw. Little-endian through SimpleITK; big-endian by hand, since SimpleITK
    always writes little-endian. flips=(x, y, z) stores the array reversed along those axes with a negative
    direction cosine (and a matching Offset), so the physical image is the same as with no flips."""
    path = Path(path)
    stored = array_zyx
    for axis_xyz, flip in enumerate(flips):
        if flip:
            stored = np.flip(stored, axis=2 - axis_xyz)
    stored = np.ascontiguousarray(stored)
    direction = _direction_matrix(flips)
    # A flipped axis starts at the far end of the volume, so the voxels keep their physical positions.
    offset = [(array_zyx.shape[2 - a] - 1) * spacing[a] if flips[a] else 0.0 for a in range(3)]
    if not big_endian:
        import SimpleITK as sitk

        image = sitk.GetImageFromArray(stored)
        image.SetSpacing(spacing)
        image.SetDirection(direction)
        image.SetOrigin(offset)
        sitk.WriteImage(image, str(path), useCompression=False)
        return path
    raw = path.with_suffix(".raw")
    met = MET_TYPES[np.dtype(stored.dtype).name]
    nz, ny, nx = stored.shape
    lines = [
        "ObjectType = Image",
        "NDims = 3",
        "BinaryData = True",
        "BinaryDataByteOrderMSB = True",
        "CompressedData = False",
        "TransformMatrix = " + " ".join(f"{v:g}" for v in direction),
        "Offset = " + " ".join(f"{v:g}" for v in offset),
        "CenterOfRotation = 0 0 0",
        "AnatomicalOrientation = RAI",
        "ElementSpacing = " + " ".join(f"{v:g}" for v in spacing),
        f"DimSize = {nx} {ny} {nz}",
        f"ElementType = {met}",
        f"ElementDataFile = {raw.name}",
    ]
    path.write_text("\n".join(lines) + "\n")
    # C order of a (z, y, x) array is x fastest, then y, then z: MetaImage's voxel order.
    raw.write_bytes(stored.astype(stored.dtype.newbyteorder(">")).tobytes())
    return path


def make_sliver07(
    root: Path,
    n: int = 3,
    shape: tuple[int, int, int] = (4, 24, 20),
    dtype: str = "int16",
    big_endian: bool = False,
    *,
    spacing: tuple[float, float, float] = SLIVER_SPACING,
    flips: tuple[bool, bool, bool] = (False, False, False),
    subfolder: str = "",
    seg_subfolder: str | None = None,
    seg_dtype: str = "uint8",
    seg_value: int = 1,
    first: int = 1,
) -> list[SliverCase]:
    """Write liver-origNNN.mhd/.raw + liver-segNNN.mhd/.raw under root (or root/subfolder).

    shape is (z, y, x). dtype: "int16" (MET_SHORT, the real scans), "uint16" (stores HU + 1024, the
    common unsigned convention) or "float32". seg_value=255 writes 0/255 masks like some derived copies.
    seg_subfolder puts the masks in a sibling folder (training-scans/ + training-labels/ layouts).
    """
    folder = Path(root) / subfolder if subfolder else Path(root)
    seg_folder = Path(root) / seg_subfolder if seg_subfolder else folder
    folder.mkdir(parents=True, exist_ok=True)
    seg_folder.mkdir(parents=True, exist_ok=True)
    cases = []
    for i in range(n):
        subject = f"{first + i:03d}"
        labels = sliver_labels(shape)
        hu = sliver_hu(labels, seed=first + i)
        if dtype == "int16":
            stored = np.round(hu).astype(np.int16)
        elif dtype == "uint16":
            stored = np.round(hu + 1024).astype(np.uint16)
        else:
            stored = hu.astype(dtype)
        scan = write_metaimage(
            folder / f"liver-orig{subject}.mhd", stored, spacing=spacing, flips=flips, big_endian=big_endian
        )
        seg = write_metaimage(
            seg_folder / f"liver-seg{subject}.mhd",
            (labels * seg_value).astype(seg_dtype),
            spacing=spacing,
            flips=flips,
            big_endian=big_endian,
        )
        cases.append(SliverCase(subject, scan, seg, stored, labels))
    return cases


# ------------------------------------------------------------------------------------------- damage


def truncate_file(path: Path, keep: float | int = 0.5) -> Path:
    """Cut a file short: keep a fraction (float) or a number of bytes (int) of it."""
    path = Path(path)
    data = path.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep
    path.write_bytes(data[:n])
    return path
