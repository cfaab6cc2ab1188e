"""IDRiD segmentation importer: directly (pure) and through the import_dataset command."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from imagesets.importers import idrid
from imagesets.importers.base import DatasetError, ImportOptions, assign_splits
from imagesets.models import Image, ImageSet
from tests.imagesets.fabricate_2d import (
    IDRID_GROUNDTRUTHS,
    IDRID_LABELS,
    IDRID_LESIONS,
    IDRID_ORIGINALS,
    IDRID_SPLITS,
    idrid_combined,
    make_idrid,
    truncate,
)

SIZE = (60, 90)


def read_all(path: Path, **options):
    header, samples = idrid.open_dataset(path, ImportOptions(**options), None)
    return header, list(samples)


def label(code: str) -> int:
    return IDRID_LABELS.index(code)


# ----------------------------------------------------------------------------------------------- pure


def test_header_counts_and_dataset_splits(tmp_path):
    fx = make_idrid(tmp_path, n_train=2, n_test=1, size=SIZE)
    header, samples = read_all(fx.root)
    assert header.modality == "fundus"
    assert header.channels == 3
    assert header.square == "fundus"
    assert header.label_names == ["background", "MA", "HE", "EX", "SE", "OD"]
    assert header.preprocessing["mask_precedence"] == ["MA", "HE", "EX", "SE", "OD"]
    assert header.preprocessing["lesion_files"] == {"MA": 3, "HE": 3, "EX": 3, "SE": 0, "OD": 3}
    assert [(s.subject, s.split) for s in samples] == [
        ("IDRiD_01", "train"),
        ("IDRiD_02", "train"),
        ("IDRiD_03", "test"),
    ]
    for sample in samples:
        assert sample.image.shape == (*SIZE, 3)
        assert sample.image.dtype == np.float32
        assert sample.image.min() >= 0.0 and sample.image.max() <= 1.0
        assert sample.mask.shape == SIZE and sample.mask.dtype == np.uint8
        # /255 normalisation of the RGB JPG (JPEG loses a little, nothing more).
        written = fx.by_id(sample.subject).rgb.astype(np.float32) / 255.0
        assert np.abs(sample.image - written).mean() < 0.02
        assert sample.metadata["source"] == f"{IDRID_ORIGINALS}/{IDRID_SPLITS[sample.split]}/{sample.subject}.jpg"


def test_overlaps_follow_precedence_and_missing_lesions_are_absent(tmp_path):
    fx = make_idrid(tmp_path, n_train=2, n_test=1, size=SIZE, missing=("IDRiD_02:SE", "IDRiD_03:HE"))
    _, samples = read_all(fx.root)
    by_id = {s.subject: s for s in samples}
    for item in fx.images:
        assert np.array_equal(by_id[item.image_id].mask, idrid_combined(item.lesions, SIZE)), item.image_id

    one = fx.by_id("IDRiD_01")
    mask = by_id["IDRiD_01"].mask
    # MA sits on a corner of HE, HE overlaps SE, EX overlaps the optic disc: the smaller lesion wins.
    assert np.all(mask[one.lesions["MA"]] == label("MA"))
    assert np.all(mask[one.lesions["HE"] & ~one.lesions["MA"]] == label("HE"))
    assert np.all(mask[one.lesions["EX"]] == label("EX"))
    assert np.any(one.lesions["HE"] & one.lesions["SE"]) and np.any(one.lesions["EX"] & one.lesions["OD"])
    assert by_id["IDRiD_01"].metadata["overlap_pixels"] > 0
    assert set(np.unique(mask)) == {0, 1, 2, 3, 4, 5}

    assert label("SE") not in by_id["IDRiD_02"].mask
    assert by_id["IDRiD_02"].metadata["lesions_absent"] == ["SE"]
    assert label("HE") not in by_id["IDRiD_03"].mask
    # Where HE would have been, the SE it used to cover shows through.
    assert label("SE") in by_id["IDRiD_03"].mask


@pytest.mark.parametrize("encoding", ["rgb_red", "gray76", "gray255", "gray01", "palette01", "bilevel"])
def test_any_nonzero_mask_pixel_is_lesion(tmp_path, encoding):
    fx = make_idrid(
        tmp_path, n_train=1, n_test=1, size=SIZE, missing=(), encodings=dict.fromkeys(IDRID_LESIONS, encoding)
    )
    _, samples = read_all(fx.root)
    for sample in samples:
        assert np.array_equal(sample.mask, idrid_combined(fx.by_id(sample.subject).lesions, SIZE))


def test_path_may_be_the_segmentation_folder_and_names_may_vary(tmp_path):
    fx = make_idrid(tmp_path, n_train=1, n_test=1, size=SIZE, missing=())
    seg = fx.segmentation
    # Slightly different unzipped names: no spaces, other case, American spelling.
    (seg / IDRID_ORIGINALS).rename(seg / "1.Original_Images")
    (seg / "1.Original_Images" / "a. Training Set").rename(seg / "1.Original_Images" / "a. training set")
    truths = seg / IDRID_GROUNDTRUTHS
    (truths / "a. Training Set" / "2. Haemorrhages").rename(truths / "a. Training Set" / "2. Hemorrhages")
    (truths / "b. Testing Set" / "3. Hard Exudates").rename(truths / "b. Testing Set" / "3_hard_exudates")
    (seg / "__MACOSX").mkdir()
    (seg / "1.Original_Images" / "a. training set" / "._IDRiD_01.jpg").write_bytes(b"resource fork")
    for path in (seg, fx.root):
        header, samples = read_all(path)
        assert [(s.subject, s.split) for s in samples] == [("IDRiD_01", "train"), ("IDRiD_02", "test")]
        for sample in samples:
            assert np.array_equal(sample.mask, idrid_combined(fx.by_id(sample.subject).lesions, SIZE))


def test_split_seed_resplits_by_image(tmp_path):
    fx = make_idrid(tmp_path, n_train=6, n_test=3, size=(30, 45))
    header, samples = read_all(fx.root, split_seed=7)
    expected = assign_splits([i.image_id for i in fx.images], seed=7, val_fraction=0.1, test_fraction=0.2)
    assert {s.subject: s.split for s in samples} == expected
    assert "val" in expected.values()
    assert "seed 7" in header.preprocessing["splits"]


def _break(fx, how: str) -> str:
    """Damage the fabricated set; returns a fragment the error message must contain."""
    seg = fx.segmentation
    if how == "no_segmentation":
        shutil.rmtree(seg)
        return "A. Segmentation"
    if how == "no_groundtruths":
        shutil.rmtree(seg / IDRID_GROUNDTRUTHS)
        return "Groundtruths"
    if how == "no_testing_images":
        shutil.rmtree(seg / IDRID_ORIGINALS / "b. Testing Set")
        return "b. Testing Set"
    if how == "no_lesion_folder":
        shutil.rmtree(seg / IDRID_GROUNDTRUTHS / "a. Training Set" / "5. Optic Disc")
        return "5. Optic Disc"
    if how == "no_images":
        for item in fx.images:
            if item.split == "train":
                item.path.unlink()
        return "no images"
    if how == "truncated_jpg":
        truncate(fx.images[1].path, 0.6)
        return fx.images[1].path.name
    if how == "garbage_jpg":
        fx.images[0].path.write_bytes(b"this is not a JPEG")
        return fx.images[0].path.name
    if how == "truncated_tif":
        path = fx.images[0].mask_paths["OD"]
        truncate(path, 0.5)
        return path.name
    if how == "garbage_tif":
        path = fx.images[1].mask_paths["MA"]
        path.write_bytes(b"II*\x00garbage")
        return path.name
    if how == "wrong_mask_size":
        path = fx.images[0].mask_paths["HE"]
        PILImage.fromarray(np.zeros((SIZE[0], SIZE[1] - 2), np.uint8)).save(path)
        return path.name
    raise AssertionError(how)


BREAKAGES = [
    "no_segmentation",
    "no_groundtruths",
    "no_testing_images",
    "no_lesion_folder",
    "no_images",
    "truncated_jpg",
    "garbage_jpg",
    "truncated_tif",
    "garbage_tif",
    "wrong_mask_size",
]


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("how", BREAKAGES)
def test_broken_dataset_is_a_dataset_error(tmp_path, how):
    fx = make_idrid(tmp_path, n_train=2, n_test=1, size=SIZE)
    fragment = _break(fx, how)
    with pytest.raises(DatasetError) as info:
        read_all(fx.root)
    assert fragment in str(info.value)


def test_wrong_mask_size_names_both_sizes(tmp_path):
    fx = make_idrid(tmp_path, n_train=1, n_test=1, size=SIZE)
    _break(fx, "wrong_mask_size")
    with pytest.raises(
        DatasetError, match=r"IDRiD_01_HE\.tif: the HE mask is 88x60 but its image IDRiD_01\.jpg is 90x60"
    ):
        read_all(fx.root)


def test_missing_folder_is_reported(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_all(tmp_path / "nowhere")


# ------------------------------------------------------------------------------------ through Django


def _nothing_left() -> None:
    assert not ImageSet.objects.exists()
    assert not Image.objects.exists()
    folder = Path(settings.MEDIA_ROOT) / "imagesets"
    assert not folder.exists() or not any(folder.iterdir())


@pytest.mark.django_db
def test_import_command_writes_rgb_pngs_with_fundus_crop(tmp_path, capsys):
    fx = make_idrid(tmp_path / "data", n_train=2, n_test=1, size=SIZE)
    call_command("import_dataset", "idrid", str(fx.root), "--name", "x", "--size", "32")
    imageset = ImageSet.objects.get(name="x")
    assert capsys.readouterr().out.strip() == str(imageset.pk)
    assert imageset.status == ImageSet.Status.READY
    assert imageset.modality == "fundus"
    assert (imageset.channels, imageset.height, imageset.width) == (3, 32, 32)
    assert imageset.label_names == IDRID_LABELS
    assert imageset.preprocessing["square"] == "fundus"
    assert imageset.preprocessing["mask_precedence"] == ["MA", "HE", "EX", "SE", "OD"]
    assert imageset.preprocessing["png"] == "8-bit RGB"
    images = list(imageset.images.order_by("index"))
    assert [(i.subject, i.split) for i in images] == [
        ("IDRiD_01", "train"),
        ("IDRiD_02", "train"),
        ("IDRiD_03", "test"),
    ]
    for row in images:
        with PILImage.open(row.path) as pil:
            assert (pil.mode, pil.size) == ("RGB", (32, 32))
            rgb = np.asarray(pil)
        with PILImage.open(row.mask_path) as pil:
            assert (pil.mode, pil.size) == ("L", (32, 32))
            mask = np.asarray(pil)
        assert set(np.unique(mask)) <= set(range(6)) and label("OD") in mask
        # Cropped to the fundus disc: the disc reaches the left and right edges on the middle row, which
        # plain padding of the 3:2 image would have left black.
        assert rgb[16, 0:2].max() > 60 and rgb[16, 30:32].max() > 60
        assert rgb[0, 0].max() < 20  # the corners are still outside the disc
        assert row.metadata["label_pixels"][label("SE")] == 0
        assert row.metadata["lesions_absent"] == ["SE"]


@pytest.mark.django_db
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("how", ["truncated_jpg", "garbage_tif", "wrong_mask_size", "no_lesion_folder", "no_images"])
def test_import_command_failure_leaves_nothing(tmp_path, how):
    fx = make_idrid(tmp_path / "data", n_train=2, n_test=1, size=SIZE)
    fragment = _break(fx, how)
    with pytest.raises(CommandError, match="import failed") as info:
        call_command("import_dataset", "idrid", str(fx.root), "--name", "x", "--size", "32")
    assert fragment in str(info.value)
    _nothing_left()
