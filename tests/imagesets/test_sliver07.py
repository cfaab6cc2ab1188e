"""SLiver07 importer: directly (pure) and through the import_dataset management command."""

import io
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from django.conf import settings
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from imagesets.canonical import decode_image_png, decode_mask_png, normalise_window
from imagesets.importers import sliver07
from imagesets.importers.base import DatasetError, ImportOptions, assign_splits
from imagesets.models import Image, ImageSet
from tests.imagesets.fabricate import SLIVER_SPACING, make_sliver07, truncate_file, write_metaimage

SHAPE = (4, 24, 20)  # z, y, x


def read_all(path: Path, **options):
    header, samples = sliver07.open_dataset(path, ImportOptions(**options), None)
    return header, list(samples)


def pixels(samples) -> dict:
    return {(s.subject, s.slice_index): (s.image, s.mask) for s in samples}


# --------------------------------------------------------------------------------------------- pure


def test_every_axial_slice(tmp_path):
    make_sliver07(tmp_path, n=3, shape=SHAPE)
    header, samples = read_all(tmp_path)
    assert len(samples) == 3 * SHAPE[0]
    assert header.modality == "liver_ct"
    assert header.channels == 1
    assert header.label_names == ["background", "liver"]
    assert header.square == "pad"
    assert header.preprocessing["window"] == {"center": 60, "width": 400}
    assert "LPS" in header.preprocessing["orientation"]
    assert {s.subject for s in samples} == {"001", "002", "003"}
    assert {s.slice_index for s in samples} == set(range(SHAPE[0]))
    # No official split: seed 0 by default, whole subjects per split.
    expected = assign_splits(["001", "002", "003"], seed=0, val_fraction=0.1, test_fraction=0.2)
    assert {s.subject: s.split for s in samples} == expected


def test_window_values_mask_and_spacing(tmp_path):
    cases = make_sliver07(tmp_path, n=1, shape=SHAPE)
    _, samples = read_all(tmp_path)
    window = normalise_window(cases[0].voxels, 60, 400)
    for sample in samples:
        z = sample.slice_index
        assert sample.image.shape == SHAPE[1:] and sample.image.dtype == np.float32
        np.testing.assert_allclose(sample.image, window[z], atol=1e-6)
        np.testing.assert_array_equal(sample.mask, cases[0].labels[z])
        assert sample.mask.dtype == np.uint8
        assert sample.metadata["pixel_spacing_mm"] == pytest.approx([SLIVER_SPACING[1], SLIVER_SPACING[0]])
        assert sample.metadata["slice_thickness_mm"] == pytest.approx(SLIVER_SPACING[2])
        assert sample.metadata["source_file"] == "liver-orig001.mhd"
        assert sample.metadata["mask_file"] == "liver-seg001.mhd"
    liver = [s for s in samples if s.mask.any()]
    assert len(liver) == SHAPE[0] - 1  # the first slice is empty
    assert all(s.image[s.mask == 1].mean() > s.image[s.mask == 0].mean() for s in liver)


@pytest.mark.parametrize("dtype", ["int16", "uint16", "float32"])
def test_voxel_types(tmp_path, dtype):
    cases = make_sliver07(tmp_path, n=1, shape=SHAPE, dtype=dtype)
    _, samples = read_all(tmp_path)
    # Voxel values are taken as stored (uint16 copies that add 1024 are not undone).
    window = normalise_window(cases[0].voxels.astype(np.float64), 60, 400)
    for sample in samples:
        np.testing.assert_allclose(sample.image, window[sample.slice_index], atol=1e-6)


@pytest.mark.parametrize("dtype", ["int16", "uint16", "float32"])
def test_big_endian_matches_little_endian(tmp_path, dtype):
    make_sliver07(tmp_path / "le", n=1, shape=SHAPE, dtype=dtype)
    cases = make_sliver07(tmp_path / "be", n=1, shape=SHAPE, dtype=dtype, big_endian=True)
    header_text = cases[0].scan.read_text()
    assert "BinaryDataByteOrderMSB = True" in header_text
    # The bytes really differ on disk ...
    assert cases[0].scan.with_suffix(".raw").read_bytes() != (tmp_path / "le" / "liver-orig001.raw").read_bytes()
    # ... and read back as the same pixels.
    le, be = pixels(read_all(tmp_path / "le")[1]), pixels(read_all(tmp_path / "be")[1])
    assert le.keys() == be.keys()
    for key, (image, mask) in le.items():
        np.testing.assert_array_equal(image, be[key][0])
        np.testing.assert_array_equal(mask, be[key][1])


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize(
    "flips", [(True, False, False), (False, True, False), (False, False, True), (True, True, True)], ids=str
)
def test_direction_flips_are_undone(tmp_path, flips, big_endian):
    make_sliver07(tmp_path / "plain", n=1, shape=SHAPE)
    make_sliver07(tmp_path / "flipped", n=1, shape=SHAPE, flips=flips, big_endian=big_endian)
    # The flipped files really store the voxels the other way round.
    stored = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "flipped" / "liver-orig001.mhd")))
    plain_stored = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "plain" / "liver-orig001.mhd")))
    assert not np.array_equal(stored, plain_stored)
    plain, flipped = pixels(read_all(tmp_path / "plain")[1]), pixels(read_all(tmp_path / "flipped")[1])
    assert plain.keys() == flipped.keys()
    for key, (image, mask) in plain.items():
        np.testing.assert_array_equal(image, flipped[key][0])
        np.testing.assert_array_equal(mask, flipped[key][1])


def test_seg_0_255_is_mapped_to_0_1(tmp_path):
    cases = make_sliver07(tmp_path, n=1, shape=SHAPE, seg_value=255)
    _, samples = read_all(tmp_path)
    for sample in samples:
        np.testing.assert_array_equal(sample.mask, cases[0].labels[sample.slice_index])


@pytest.mark.parametrize(
    ("subfolder", "seg_subfolder"),
    [("training", None), ("training-scans", "training-labels")],
)
def test_layouts_one_level_down(tmp_path, subfolder, seg_subfolder):
    make_sliver07(tmp_path, n=2, shape=SHAPE, subfolder=subfolder, seg_subfolder=seg_subfolder)
    _, samples = read_all(tmp_path)
    assert len(samples) == 2 * SHAPE[0]
    assert samples[0].metadata["source_file"] == f"{subfolder}/liver-orig001.mhd"
    assert samples[0].metadata["mask_file"] == f"{seg_subfolder or subfolder}/liver-seg001.mhd"


def test_split_seed_option(tmp_path):
    make_sliver07(tmp_path, n=6, shape=(1, 8, 8))
    header, first = read_all(tmp_path, split_seed=5)
    _, again = read_all(tmp_path, split_seed=5)
    expected = assign_splits([f"{i:03d}" for i in range(1, 7)], seed=5, val_fraction=0.1, test_fraction=0.2)
    assert {s.subject: s.split for s in first} == expected
    assert [(s.subject, s.split) for s in again] == [(s.subject, s.split) for s in first]
    assert header.preprocessing["splits"] == "split by subject with seed 5"


def test_progress_once_per_scan(tmp_path):
    make_sliver07(tmp_path, n=2, shape=(1, 8, 8))
    calls = []
    _, samples = sliver07.open_dataset(tmp_path, ImportOptions(), lambda f, m: calls.append((f, m)))
    list(samples)
    assert [f for f, _ in calls] == [0.0, 0.5]


def _missing_raw(root, cases):
    cases[0].scan.with_suffix(".raw").unlink()
    return "liver-orig001.raw is missing"


def _truncated_raw(root, cases):
    truncate_file(cases[1].seg.with_suffix(".raw"), 0.5)
    return "liver-seg002.raw: data file is truncated"


def _corrupt_header(root, cases):
    cases[0].scan.write_bytes(b"\x89\x00\x13garbage\xff\xfe" * 10)
    return "liver-orig001.mhd: not a valid MetaImage header"


def _header_without_dims(root, cases):
    text = cases[0].scan.read_text()
    cases[0].scan.write_text("\n".join(ln for ln in text.splitlines() if not ln.startswith("DimSize")))
    return "no DimSize field"


def _unknown_element_type(root, cases):
    # Passes the header checks; SimpleITK itself refuses it, and that error must still name the file.
    cases[0].scan.write_text(cases[0].scan.read_text().replace("MET_SHORT", "MET_BOGUS"))
    return "liver-orig001.mhd: cannot read MetaImage"


def _size_mismatch(root, cases):
    write_metaimage(cases[0].seg, np.zeros((SHAPE[0], SHAPE[1], SHAPE[2] - 2), np.uint8))
    return "differs from the scan"


def _two_d_scan(root, cases):
    image = sitk.GetImageFromArray(np.zeros(SHAPE[1:], np.int16))
    sitk.WriteImage(image, str(cases[0].scan), useCompression=False)
    return "expected a 3-D volume"


def _bad_seg_values(root, cases):
    labels = cases[0].labels.copy()
    labels[1, 2, 3] = 2
    write_metaimage(cases[0].seg, labels)
    return "unexpected segmentation values [0, 1, 2]"


def _scan_without_seg(root, cases):
    cases[2].seg.unlink()
    return "liver-orig003.mhd: no matching liver-seg003.mhd"


def _seg_without_scan(root, cases):
    cases[2].scan.unlink()
    return "liver-seg003.mhd: segmentation without a matching liver-orig003.mhd"


def _duplicate_number(root, cases):
    make_sliver07(root / "test-scans", n=1, shape=SHAPE)
    return "Scan number 001 appears more than once"


def _duplicate_scan_only(root, cases):
    # A second copy of one scan (no second segmentation) is just as ambiguous.
    make_sliver07(root / "copy", n=1, shape=SHAPE)
    next((root / "copy").glob("liver-seg*.mhd")).unlink()
    return "Scan number 001 appears more than once"


def _nan_values(root, cases):
    hu = cases[0].voxels.astype(np.float32)
    hu[0, 0, 0] = np.nan
    write_metaimage(cases[0].scan, hu)
    return "NaN"


BROKEN = {
    "missing raw": _missing_raw,
    "truncated raw": _truncated_raw,
    "corrupt header": _corrupt_header,
    "header without DimSize": _header_without_dims,
    "unknown element type": _unknown_element_type,
    "size mismatch": _size_mismatch,
    "2-D scan": _two_d_scan,
    "bad segmentation values": _bad_seg_values,
    "scan without seg": _scan_without_seg,
    "seg without scan": _seg_without_scan,
    "duplicate number": _duplicate_number,
    "duplicate scan only": _duplicate_scan_only,
    "NaN": _nan_values,
}


@pytest.mark.parametrize("breakage", BROKEN.values(), ids=BROKEN.keys())
def test_broken_datasets_raise_dataset_error(tmp_path, breakage):
    cases = make_sliver07(tmp_path, n=3, shape=SHAPE)
    needle = breakage(tmp_path, cases)
    with pytest.raises(DatasetError) as info:
        read_all(tmp_path)
    assert needle in str(info.value)


def test_empty_folder(tmp_path):
    (tmp_path / "training").mkdir()
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(DatasetError, match="No SLiver07 scans found"):
        sliver07.open_dataset(tmp_path, ImportOptions(), None)


# ------------------------------------------------------------------------------------------ command


def run_import(path: Path, name: str = "sliver", *extra: str) -> ImageSet:
    call_command("import_dataset", "sliver07", str(path), "--name", name, "--size", "32", *extra, stderr=io.StringIO())
    return ImageSet.objects.get(name=name)


def media_files() -> list[Path]:
    folder = Path(settings.MEDIA_ROOT) / "imagesets"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.mark.django_db
def test_command_imports_sliver07(import_root):
    make_sliver07(import_root / "sliver", n=3, shape=SHAPE, big_endian=True, flips=(True, False, False))
    imageset = run_import(import_root / "sliver")
    assert imageset.status == ImageSet.Status.READY
    assert imageset.modality == "liver_ct"
    assert (imageset.width, imageset.height, imageset.channels) == (32, 32, 1)
    assert imageset.label_names == ["background", "liver"]
    assert imageset.preprocessing["window"] == {"center": 60, "width": 400}
    images = list(imageset.images.order_by("index"))
    assert len(images) == 3 * SHAPE[0]
    assert {i.subject for i in images} == {"001", "002", "003"}
    assert len({(i.subject, i.split) for i in images}) == 3
    assert images[0].metadata["pixel_spacing_mm"] == pytest.approx([SLIVER_SPACING[1], SLIVER_SPACING[0]])
    with PILImage.open(images[0].path) as pil:
        assert pil.mode == "I;16" and pil.size == (32, 32)
    for row in images:
        image, mask = decode_image_png(str(row.path)), decode_mask_png(str(row.mask_path))
        assert image.shape == mask.shape == (32, 32)
        assert set(np.unique(mask).tolist()) <= {0, 1}
        if mask.any():
            # The enhanced liver (130 HU) is brighter than the rest of the slice, exactly under the mask.
            assert image[mask == 1].mean() > 0.6 and image[mask == 0].mean() < 0.4
    assert len(media_files()) == 2 * len(images)


@pytest.mark.django_db
def test_command_skip_empty(import_root):
    make_sliver07(import_root / "sliver", n=3, shape=SHAPE)
    imageset = run_import(import_root / "sliver", "sliver", "--skip-empty")
    assert imageset.images.count() == 3 * (SHAPE[0] - 1)


def _bad_seg_values_last_scan(root, cases):
    labels = cases[-1].labels.copy()
    labels[-1, 2, 3] = 3
    write_metaimage(cases[-1].seg, labels)
    return "liver-seg003.mhd: unexpected segmentation values [0, 1, 3]"


COMMAND_FAILURES = {
    # Fails while reading the last scan, after the first scans' PNGs were written: those must go too.
    "bad values in the last scan": _bad_seg_values_last_scan,
    "truncated raw": _truncated_raw,
    "missing raw": _missing_raw,
    "size mismatch": _size_mismatch,
    "scan without seg": _scan_without_seg,
}


@pytest.mark.django_db
@pytest.mark.parametrize("breakage", COMMAND_FAILURES.values(), ids=COMMAND_FAILURES.keys())
def test_command_failure_leaves_nothing(import_root, breakage):
    cases = make_sliver07(import_root / "sliver", n=3, shape=SHAPE)
    needle = breakage(import_root / "sliver", cases)
    with pytest.raises(CommandError) as info:
        run_import(import_root / "sliver")
    assert "import failed" in str(info.value) and needle in str(info.value)
    assert not ImageSet.objects.exists()
    assert not Image.objects.exists()
    assert media_files() == []


@pytest.mark.django_db
def test_command_empty_folder(import_root):
    (import_root / "empty").mkdir()
    with pytest.raises(CommandError, match="No SLiver07 scans found"):
        run_import(import_root / "empty")
    assert not ImageSet.objects.exists() and not Image.objects.exists()
    assert media_files() == []
