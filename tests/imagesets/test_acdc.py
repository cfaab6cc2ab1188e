"""ACDC importer: directly (pure) and through the import_dataset management command."""

import io
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from imagesets.canonical import decode_image_png, decode_mask_png, normalise_percentiles
from imagesets.importers import acdc
from imagesets.importers.base import DatasetError, ImportOptions
from imagesets.models import Image, ImageSet
from tests.imagesets.fabricate import ACDC_ZOOMS, acdc_labels, make_acdc, truncate_file, write_nifti

SHAPE = (20, 24, 3)  # X, Y, Z: not square, so a missed transpose changes the image shape


def read_all(path: Path, **options):
    header, samples = acdc.open_dataset(path, ImportOptions(**options), None)
    return header, list(samples)


# --------------------------------------------------------------------------------------------- pure


def test_every_slice_of_ed_and_es_frames(tmp_path):
    make_acdc(tmp_path, n_train=2, n_test=1, shape=SHAPE)
    header, samples = read_all(tmp_path)
    assert len(samples) == 3 * 2 * SHAPE[2]  # patients x frames x slices
    assert header.modality == "cardiac_mri"
    assert header.channels == 1
    assert header.label_names == ["background", "RV", "MYO", "LV"]
    assert header.square == "pad"
    assert header.preprocessing["percentiles"] == [0.5, 99.5]
    assert "transposed" in header.preprocessing["orientation"]
    keys = {(s.subject, s.frame, s.metadata["phase"], s.slice_index) for s in samples}
    assert len(keys) == len(samples)
    assert {(s.frame, s.metadata["phase"]) for s in samples} == {(1, "ED"), (3, "ES")}
    assert {s.slice_index for s in samples} == set(range(SHAPE[2]))
    assert {s.subject: s.split for s in samples} == {"patient001": "train", "patient002": "train", "patient101": "test"}
    groups = {s.subject: s.metadata["group"] for s in samples}
    assert groups == {"patient001": "DCM", "patient002": "HCM", "patient101": "MINF"}


def test_orientation_normalisation_and_spacing(tmp_path):
    patients = make_acdc(tmp_path, n_train=1, n_test=0, shape=SHAPE)
    _, samples = read_all(tmp_path)
    volume, labels = patients[0].volumes["ES"]
    expected, _ = normalise_percentiles(volume, 0.5, 99.5)
    es = [s for s in samples if s.metadata["phase"] == "ES"]
    for sample in es:
        z = sample.slice_index
        assert sample.image.shape == (SHAPE[1], SHAPE[0])  # rows = Y, columns = X
        assert sample.image.dtype == np.float32
        np.testing.assert_allclose(sample.image, expected[:, :, z].T, atol=1e-6)
        np.testing.assert_array_equal(sample.mask, labels[:, :, z].T)
        assert sample.metadata["pixel_spacing_mm"] == [ACDC_ZOOMS[1], ACDC_ZOOMS[0]]
        assert sample.metadata["slice_thickness_mm"] == ACDC_ZOOMS[2]
        assert sample.metadata["source_file"] == "training/patient001/patient001_frame03.nii.gz"
    assert min(s.image.min() for s in samples) >= 0.0 and max(s.image.max() for s in samples) <= 1.0


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32, np.float64])
def test_voxel_types(tmp_path, dtype):
    make_acdc(tmp_path, n_train=1, n_test=0, shape=SHAPE, dtype=dtype)
    _, samples = read_all(tmp_path)
    assert len(samples) == 2 * SHAPE[2]
    sample = samples[0]
    assert sample.image.dtype == np.float32 and sample.mask.dtype == np.uint8
    assert sample.image[sample.mask == 3].mean() > sample.image[sample.mask == 0].mean() + 0.5


def test_float_masks_and_uncompressed_nifti(tmp_path):
    patients = make_acdc(tmp_path, n_train=1, n_test=0, shape=SHAPE)
    folder = patients[0].folder
    # Masks saved as float (some conversions do this) and an uncompressed .nii frame are both fine.
    write_nifti(folder / "patient001_frame01_gt.nii.gz", patients[0].volumes["ED"][1].astype(np.float32))
    (folder / "patient001_frame03.nii.gz").unlink()
    write_nifti(folder / "patient001_frame03.nii", patients[0].volumes["ES"][0])
    _, samples = read_all(tmp_path)
    assert len(samples) == 2 * SHAPE[2]
    assert {s.metadata["source_file"].rsplit("/", 1)[1] for s in samples} == {
        "patient001_frame01.nii.gz",
        "patient001_frame03.nii",
    }


@pytest.mark.parametrize("layout", ["flat", "database"])
def test_other_layouts(tmp_path, layout):
    make_acdc(tmp_path, n_train=2, n_test=1, shape=SHAPE, layout=layout)
    _, samples = read_all(tmp_path)
    splits = {s.subject: s.split for s in samples}
    if layout == "flat":
        assert splits == {"patient001": "train", "patient002": "train"}
    else:
        assert splits == {"patient001": "train", "patient002": "train", "patient101": "test"}


def test_seeded_resplit_is_by_patient_and_deterministic(tmp_path):
    make_acdc(tmp_path, n_train=4, n_test=2, shape=(12, 14, 2), write_4d=False)
    _, first = read_all(tmp_path, split_seed=7)
    _, again = read_all(tmp_path, split_seed=7)
    mapping = {}
    for s in first:
        assert mapping.setdefault(s.subject, s.split) == s.split  # a patient never straddles two splits
    assert len(mapping) == 6
    assert set(mapping.values()) == {"train", "val", "test"}
    assert [(s.subject, s.split) for s in again] == [(s.subject, s.split) for s in first]


def test_progress_once_per_patient(tmp_path):
    make_acdc(tmp_path, n_train=2, n_test=1, shape=(8, 8, 1), write_4d=False)
    calls = []
    _, samples = acdc.open_dataset(tmp_path, ImportOptions(), lambda f, m: calls.append((f, m)))
    list(samples)
    assert [round(f, 3) for f, _ in calls] == [0.0, 0.333, 0.667]
    assert "patient101" in calls[-1][1]


def _remove_info(patients):
    (patients[0].folder / "Info.cfg").unlink()
    return "Info.cfg"


def _info_without_es(patients):
    (patients[0].folder / "Info.cfg").write_text("ED: 1\nGroup: DCM\nNbFrame: 4\n")
    return "'ES:'"


def _remove_frame(patients):
    (patients[0].folder / "patient001_frame03.nii.gz").unlink()
    return "patient001_frame03.nii.gz"


def _remove_test_gt(patients):
    (patients[-1].folder / "patient101_frame01_gt.nii.gz").unlink()
    return "patient101_frame01_gt.nii.gz"


def _truncate_frame(patients):
    truncate_file(patients[0].folder / "patient001_frame01.nii.gz", 0.5)
    return "patient001_frame01.nii.gz"


def _garbage_frame(patients):
    (patients[0].folder / "patient001_frame01.nii.gz").write_bytes(b"not a nifti file at all" * 20)
    return "patient001_frame01.nii.gz"


def _shape_mismatch(patients):
    write_nifti(patients[0].folder / "patient001_frame01_gt.nii.gz", acdc_labels((20, 22, 3)))
    return "differs"


def _unknown_label(patients):
    labels = patients[0].volumes["ED"][1].copy()
    labels[2, 3, 0] = 7
    write_nifti(patients[0].folder / "patient001_frame01_gt.nii.gz", labels)
    return "unknown label value(s) [7]"


def _nan_values(patients):
    volume = patients[0].volumes["ED"][0].astype(np.float32)
    volume[1, 1, 1] = np.nan
    write_nifti(patients[0].folder / "patient001_frame01.nii.gz", volume)
    return "NaN"


def _four_d_frame(patients):
    volume = patients[0].volumes["ED"][0]
    write_nifti(patients[0].folder / "patient001_frame01.nii.gz", np.stack([volume, volume], axis=3))
    return "3-D"


BROKEN = {
    "missing Info.cfg": _remove_info,
    "Info.cfg without ES": _info_without_es,
    "missing frame": _remove_frame,
    "testing without ground truth": _remove_test_gt,
    "truncated nii.gz": _truncate_frame,
    "not a nifti": _garbage_frame,
    "shape mismatch": _shape_mismatch,
    "unknown label": _unknown_label,
    "NaN": _nan_values,
    "4-D frame": _four_d_frame,
}


@pytest.mark.parametrize("breakage", BROKEN.values(), ids=BROKEN.keys())
def test_broken_datasets_raise_dataset_error(tmp_path, breakage):
    patients = make_acdc(tmp_path, n_train=1, n_test=1, shape=SHAPE, write_4d=False)
    needle = breakage(patients)
    with pytest.raises(DatasetError) as info:
        read_all(tmp_path)
    assert needle in str(info.value)


def test_missing_ground_truth_in_testing_mentions_why(tmp_path):
    patients = make_acdc(tmp_path, n_train=1, n_test=1, shape=SHAPE, write_4d=False)
    _remove_test_gt(patients)
    # Checked before any volume is read: open_dataset itself refuses.
    with pytest.raises(DatasetError, match="testing set without ground truth"):
        acdc.open_dataset(tmp_path, ImportOptions(), None)


@pytest.mark.parametrize("make", ["empty", "unrelated", "empty training"])
def test_no_patients(tmp_path, make):
    if make == "unrelated":
        (tmp_path / "notes").mkdir()
        (tmp_path / "readme.txt").write_text("hello")
    elif make == "empty training":
        (tmp_path / "training").mkdir()
    with pytest.raises(DatasetError, match="No ACDC patients found"):
        acdc.open_dataset(tmp_path, ImportOptions(), None)


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        acdc.open_dataset(tmp_path / "nope", ImportOptions(), None)


# ------------------------------------------------------------------------------------------ command


def run_import(path: Path, name: str = "acdc", *extra: str) -> ImageSet:
    call_command("import_dataset", "acdc", str(path), "--name", name, "--size", "32", *extra, stderr=io.StringIO())
    return ImageSet.objects.get(name=name)


def media_files() -> list[Path]:
    folder = Path(settings.MEDIA_ROOT) / "imagesets"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.mark.django_db
def test_command_imports_acdc(import_root, capsys):
    make_acdc(import_root / "acdc", n_train=2, n_test=1, shape=SHAPE)
    imageset = run_import(import_root / "acdc")
    assert capsys.readouterr().out.strip() == str(imageset.pk)
    assert imageset.status == ImageSet.Status.READY
    assert imageset.modality == "cardiac_mri"
    assert (imageset.width, imageset.height, imageset.channels) == (32, 32, 1)
    assert imageset.label_names == ["background", "RV", "MYO", "LV"]
    assert imageset.preprocessing["percentiles"] == [0.5, 99.5]
    assert imageset.preprocessing["square"] == "pad"
    images = list(imageset.images.order_by("index"))
    assert len(images) == 18
    assert {(i.subject, i.split) for i in images} == {
        ("patient001", "train"),
        ("patient002", "train"),
        ("patient101", "test"),
    }
    assert {i.frame for i in images} == {1, 3}
    first = images[0]
    assert first.metadata["pixel_spacing_mm"] == [ACDC_ZOOMS[1], ACDC_ZOOMS[0]]
    assert first.metadata["phase"] == "ED"
    with PILImage.open(first.path) as pil:
        assert pil.mode == "I;16" and pil.size == (32, 32)
    for row in images:
        image, mask = decode_image_png(str(row.path)), decode_mask_png(str(row.mask_path))
        assert image.shape == mask.shape == (32, 32)
        assert set(np.unique(mask).tolist()) <= {0, 1, 2, 3}
        if (mask == 3).any():
            # The bright LV blood pool is exactly where label 3 is: image and mask stayed aligned.
            lv = image[mask == 3].mean()
            assert lv > image[mask == 2].mean() + 0.3 and lv > image[mask == 0].mean() + 0.5
    assert len(media_files()) == 36  # one image and one mask per slice


@pytest.mark.django_db
def test_command_skip_empty(import_root):
    make_acdc(import_root / "acdc", n_train=2, n_test=1, shape=SHAPE, write_4d=False)
    imageset = run_import(import_root / "acdc", "acdc", "--skip-empty")
    # The last slice of every frame has no labels.
    assert imageset.images.count() == 3 * 2 * (SHAPE[2] - 1)
    assert all(sum(i.metadata["label_pixels"][1:]) > 0 for i in imageset.images.all())


@pytest.mark.django_db
def test_command_split_seed(import_root):
    make_acdc(import_root / "acdc", n_train=4, n_test=2, shape=(12, 14, 2), write_4d=False)
    a = run_import(import_root / "acdc", "a", "--split-seed", "3")
    b = run_import(import_root / "acdc", "b", "--split-seed", "3")
    splits_a = set(a.images.values_list("subject", "split"))
    assert len(splits_a) == 6  # one split per patient
    assert {split for _, split in splits_a} == {"train", "val", "test"}
    assert set(b.images.values_list("subject", "split")) == splits_a
    assert a.preprocessing["split_seed"] == 3


def _truncate_last_patient(patients):
    truncate_file(patients[-1].folder / "patient101_frame03.nii.gz", 0.6)
    return "patient101_frame03.nii.gz"


COMMAND_FAILURES = {
    # Fails on the last volume read, after earlier slices' PNGs were written: those must go too.
    "truncated last frame": (_truncate_last_patient, "patient101_frame03.nii.gz: cannot read NIfTI"),
    "truncated nii.gz": (_truncate_frame, "patient001_frame01.nii.gz"),
    "missing Info.cfg": (_remove_info, "Info.cfg"),
    "shape mismatch": (_shape_mismatch, "differs"),
    "unknown label": (_unknown_label, "[7]"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", COMMAND_FAILURES.values(), ids=COMMAND_FAILURES.keys())
def test_command_failure_leaves_nothing(import_root, case):
    breakage, needle = case
    patients = make_acdc(import_root / "acdc", n_train=1, n_test=1, shape=SHAPE, write_4d=False)
    breakage(patients)
    with pytest.raises(CommandError) as info:
        run_import(import_root / "acdc")
    assert "import failed" in str(info.value) and needle in str(info.value)
    assert not ImageSet.objects.exists()
    assert not Image.objects.exists()
    assert media_files() == []


@pytest.mark.django_db
def test_command_empty_folder(import_root):
    (import_root / "empty").mkdir()
    with pytest.raises(CommandError, match="No ACDC patients found"):
        run_import(import_root / "empty")
    assert not ImageSet.objects.exists() and not Image.objects.exists()
    assert media_files() == []
