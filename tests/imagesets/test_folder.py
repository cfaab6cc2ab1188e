"""Folder importer: directly (pure) and through the import_dataset command."""

import json
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from imagesets.importers import folder
from imagesets.importers.base import DatasetError, ImportOptions, assign_splits
from imagesets.models import Image, ImageSet
from tests.imagesets.fabricate_2d import folder_mask, folder_pixels, make_folder, truncate, write_folder_image


def read_all(path: Path, **options):
    header, samples = folder.open_dataset(path, ImportOptions(**options), None)
    return header, list(samples)


def as_uint16(image: np.ndarray) -> np.ndarray:
    return np.round(image * 65535.0).astype(np.uint16)


def as_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(image * 255.0).astype(np.uint8)


# ------------------------------------------------------------------------------------ layout and labels


@pytest.mark.parametrize("layout", ["flat", "images"])
def test_gray8_with_masks(tmp_path, layout):
    fx = make_folder(tmp_path / "ds", n=4, kind="gray8", layout=layout)
    header, samples = read_all(fx.path)
    assert (header.modality, header.channels, header.square) == ("other", 1, "pad")
    assert header.label_names == ["background", "class1", "class2"]
    assert header.preprocessing["source_bit_depths"] == [8]
    # Junk files (.DS_Store, README.txt, ._img_000.png) are ignored.
    assert [s.subject for s in samples] == ["img_000", "img_001", "img_002", "img_003"]
    expected_splits = assign_splits([s.subject for s in samples], seed=0, val_fraction=0.1, test_fraction=0.2)
    assert {s.subject: s.split for s in samples} == expected_splits
    for sample in samples:
        item = fx.by_stem(sample.subject)
        assert sample.image.dtype == np.float32 and sample.image.shape == (24, 32)
        assert np.array_equal(as_uint8(sample.image), item.pixels)
        assert np.array_equal(sample.mask, item.mask)
        assert sample.metadata["bit_depth"] == 8


def test_seeded_split_uses_split_seed(tmp_path):
    fx = make_folder(tmp_path / "ds", n=10, masks=False)
    header, samples = read_all(fx.path, split_seed=5, val_fraction=0.2, test_fraction=0.3)
    expected = assign_splits([i.stem for i in fx.images], seed=5, val_fraction=0.2, test_fraction=0.3)
    assert {s.subject: s.split for s in samples} == expected
    assert header.label_names == [] and all(s.mask is None for s in samples)
    assert "seed 5" in header.preprocessing["splits"]


def test_split_folders_give_the_splits(tmp_path):
    fx = make_folder(tmp_path / "ds", splits={"train": 3, "val": 1, "test": 2}, layout="images")
    header, samples = read_all(fx.path)
    assert [(s.subject, s.split) for s in samples] == [(i.stem, i.split) for i in fx.images]
    assert header.preprocessing["splits"].startswith("split folders")
    # split_seed re-splits by subject instead.
    _, resplit = read_all(fx.path, split_seed=3)
    expected = assign_splits([i.stem for i in fx.images], seed=3, val_fraction=0.1, test_fraction=0.2)
    assert {s.subject: s.split for s in resplit} == expected


def test_repeated_stems_across_split_folders_get_split_prefixed_subjects(tmp_path):
    fx = make_folder(tmp_path / "ds", splits={"train": 2, "test": 2}, per_split_numbering=True)
    header, samples = read_all(fx.path)
    assert [s.subject for s in samples] == ["train/img_000", "train/img_001", "test/img_000", "test/img_001"]
    assert [s.split for s in samples] == ["train", "train", "test", "test"]
    assert np.array_equal(samples[2].mask, fx.by_stem("img_000", "test").mask)


def test_split_folders_and_loose_images_is_an_error(tmp_path):
    fx = make_folder(tmp_path / "ds", splits={"train": 2, "test": 1})
    write_folder_image(fx.path / "stray.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(
        DatasetError, match=r"split folders \(train, test\) and also images outside them \(stray\.png\)"
    ):
        read_all(fx.path)


@pytest.mark.parametrize("labels_format", ["txt", "json"])
def test_label_file_names_the_classes(tmp_path, labels_format):
    fx = make_folder(
        tmp_path / "ds", n=3, labels=["background", "liver", "tumour", "vessel"], labels_format=labels_format
    )
    header, samples = read_all(fx.path)
    assert header.label_names == ["background", "liver", "tumour", "vessel"]
    assert header.preprocessing["labels_from"] == f"labels.{labels_format}"
    assert all(np.array_equal(s.mask, fx.by_stem(s.subject).mask) for s in samples)


def test_label_json_may_map_indices_to_names(tmp_path):
    fx = make_folder(tmp_path / "ds", n=2)
    (fx.path / "labels.json").write_text(json.dumps({"1": "lesion", "0": "background", "2": "disc"}))
    header, _ = read_all(fx.path)
    assert header.label_names == ["background", "lesion", "disc"]


def test_mask_value_beyond_label_file_is_an_error(tmp_path):
    fx = make_folder(tmp_path / "ds", n=3, labels=["background", "organ"])
    with pytest.raises(DatasetError, match=r"masks/img_000\.png: unknown label value\(s\) \[2\]; expected 0\.\.1"):
        read_all(fx.path)


def test_labels_without_masks_is_an_error(tmp_path):
    fx = make_folder(tmp_path / "ds", n=2, masks=False, labels=["background", "organ"])
    with pytest.raises(DatasetError, match="labels.txt names classes but the folder has no masks"):
        read_all(fx.path)


def test_class_names_up_to_largest_mask_value(tmp_path):
    fx = make_folder(tmp_path / "ds", n=3, n_classes=5)
    header, samples = read_all(fx.path)
    assert header.label_names == ["background", "class1", "class2", "class3", "class4"]
    assert all(np.array_equal(s.mask, fx.by_stem(s.subject).mask) for s in samples)


def test_binary_masks_saved_as_0_255_become_class_1(tmp_path):
    fx = make_folder(tmp_path / "ds", n=3, mask_encoding="L255")
    header, samples = read_all(fx.path)
    assert header.label_names == ["background", "class1"]
    assert "0/255" in header.preprocessing["mask_values"]
    for sample in samples:
        assert set(np.unique(sample.mask)) == {0, 1}
        assert np.array_equal(sample.mask, fx.by_stem(sample.subject).mask)


def test_palette_masks_are_read_as_indices(tmp_path):
    fx = make_folder(tmp_path / "ds", n=2, mask_encoding="P")
    header, samples = read_all(fx.path)
    assert header.label_names == ["background", "class1", "class2"]
    assert all(np.array_equal(s.mask, fx.by_stem(s.subject).mask) for s in samples)


# ------------------------------------------------------------------------------------ pixels


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16_bit_keeps_full_precision(tmp_path, ext):
    fx = make_folder(tmp_path / "ds", n=2, kind="gray16", ext=ext)
    header, samples = read_all(fx.path)
    assert header.channels == 1 and header.preprocessing["source_bit_depths"] == [16]
    for sample in samples:
        written = fx.by_stem(sample.subject).pixels
        assert np.array_equal(as_uint16(sample.image), written)
        assert len(np.unique(written)) > 256  # more levels than 8 bits could hold
        assert sample.metadata["bit_depth"] == 16


def test_32_bit_integer_tif_within_16_bits_is_read_as_16_bit(tmp_path):
    ds = tmp_path / "ds"
    ds.mkdir()
    values = (np.arange(48, dtype=np.int32).reshape(6, 8) * 1000) + 17
    PILImage.fromarray(values).save(ds / "a.tif")
    with PILImage.open(ds / "a.tif") as pil:
        assert pil.mode == "I"
    header, (sample,) = read_all(ds)
    assert header.channels == 1
    assert np.array_equal(as_uint16(sample.image), values.astype(np.uint16))

    PILImage.fromarray(values * 100).save(ds / "a.tif")
    with pytest.raises(DatasetError, match=r"a\.tif: 32-bit integer values 1700\.\.4701700 do not fit in 16 bits"):
        read_all(ds)


def test_rgb_rgba_palette_and_jpg_images_have_three_channels(tmp_path):
    fx = make_folder(tmp_path / "ds", n=3, kind=["rgb", "rgba", "rgb"], ext=[".png", ".png", ".jpg"], masks=False)
    palette_path = fx.path / "img_100.png"
    PILImage.fromarray(fx.images[0].pixels, mode="RGB").convert("P").save(palette_path)
    header, samples = read_all(fx.path)
    assert header.channels == 3
    assert header.preprocessing["source_modes"] == ["P", "RGB", "RGBA"]
    by_subject = {s.subject: s for s in samples}
    assert np.array_equal(as_uint8(by_subject["img_000"].image), fx.images[0].pixels)
    # Alpha is dropped, not blended.
    assert np.array_equal(as_uint8(by_subject["img_001"].image), fx.images[1].pixels[..., :3])
    # JPEG (with chroma subsampling) blurs the fine gradient but keeps the /255 scale.
    jpeg = by_subject["img_002"].image
    assert abs(jpeg.mean() - fx.images[2].pixels.mean() / 255.0) < 0.01
    assert np.abs(jpeg - fx.images[2].pixels / 255.0).mean() < 0.1
    assert by_subject["img_100"].image.shape == (24, 32, 3)


def test_images_of_different_sizes_are_allowed(tmp_path):
    fx = make_folder(tmp_path / "ds", n=3, size=[(24, 32), (40, 20), (16, 16)])
    _, samples = read_all(fx.path)
    assert [s.image.shape for s in samples] == [(24, 32), (40, 20), (16, 16)]
    assert [s.mask.shape for s in samples] == [(24, 32), (40, 20), (16, 16)]


# ------------------------------------------------------------------------------------ errors


def test_empty_folder(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "README.md").write_text("nothing here")
    with pytest.raises(DatasetError, match="no images found in"):
        read_all(tmp_path / "ds")


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="image folder not found"):
        read_all(tmp_path / "nowhere")


def test_mixed_channels_name_the_offending_file(tmp_path):
    fx = make_folder(tmp_path / "ds", n=3, kind=["gray16", "gray8", "rgb"])
    with pytest.raises(
        DatasetError, match=r"img_002\.png is colour \(3 channels\) but the first image img_000\.png is grayscale"
    ):
        read_all(fx.path)


def test_some_images_without_masks_is_an_error(tmp_path):
    fx = make_folder(tmp_path / "ds", n=8, masks=[True, False, True, False, False, False, False, False])
    with pytest.raises(DatasetError, match=r"6 of 8 images have no mask .*img_001\.png, img_003\.png, .* and 1 more"):
        read_all(fx.path)


def test_masks_that_match_no_image_is_an_error(tmp_path):
    fx = make_folder(tmp_path / "ds", n=2)
    for item in fx.images:
        item.mask_path.rename(item.mask_path.with_name(f"mask_{item.stem}.png"))
    with pytest.raises(DatasetError, match="none of the 2 files in .*masks matches an image"):
        read_all(fx.path)


def test_mask_of_wrong_size(tmp_path):
    fx = make_folder(tmp_path / "ds", n=2)
    PILImage.fromarray(np.zeros((24, 30), np.uint8)).save(fx.images[1].mask_path)
    with pytest.raises(DatasetError, match=r"img_001\.png: the mask is 30x24 but its image img_001\.png is 32x24"):
        read_all(fx.path)


def test_rgb_or_jpeg_masks_are_refused(tmp_path):
    fx = make_folder(tmp_path / "ds", n=2)
    PILImage.fromarray(np.zeros((24, 32, 3), np.uint8)).save(fx.images[0].mask_path)
    with pytest.raises(DatasetError, match=r"img_000\.png: masks must be 8-bit class-index images .* RGB"):
        read_all(fx.path)
    fx.images[0].mask_path.unlink()
    PILImage.fromarray(fx.images[0].mask).save(fx.images[0].mask_path.with_suffix(".jpg"))
    with pytest.raises(DatasetError, match=r"img_000\.jpg: masks must be PNG or TIF"):
        read_all(fx.path)


def test_duplicate_stems_are_refused(tmp_path):
    fx = make_folder(tmp_path / "ds", n=2, masks=False)
    write_folder_image(fx.path / "img_000.tif", fx.images[0].pixels)
    with pytest.raises(DatasetError, match=r"img_000\.png and img_000\.tif have the same name stem"):
        read_all(fx.path)


@pytest.mark.parametrize("target", ["image", "mask"])
def test_truncated_png_is_an_error_naming_the_file(tmp_path, target):
    fx = make_folder(tmp_path / "ds", n=3, kind="gray16")
    path = fx.images[2].path if target == "image" else fx.images[2].mask_path
    truncate(path, 0.7)
    with pytest.raises(DatasetError, match=rf"{path.parent.name}/img_002\.png: cannot read the {target}"):
        read_all(fx.path)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_garbage_tif_is_an_error_naming_the_file(tmp_path):
    fx = make_folder(tmp_path / "ds", n=2, ext=".tif", masks=False)
    fx.images[1].path.write_bytes(b"MM\x00*not a tiff at all")
    with pytest.raises(DatasetError, match=r"img_001\.tif: cannot read the image"):
        read_all(fx.path)


# ------------------------------------------------------------------------------------ through Django


def _nothing_left() -> None:
    assert not ImageSet.objects.exists()
    assert not Image.objects.exists()
    folder_ = Path(settings.MEDIA_ROOT) / "imagesets"
    assert not folder_.exists() or not any(folder_.iterdir())


@pytest.mark.django_db
def test_import_command_keeps_16_bit_gradient_and_mask_alignment(tmp_path):
    # 24x32 images are padded (4 rows above, 4 below) to 32x32; --size 32 means no resampling, so the
    # stored PNG must hold the exact 16-bit values, and the mask must sit on the same rows.
    fx = make_folder(tmp_path / "ds", n=3, kind="gray16", ext=[".png", ".tif", ".png"])
    call_command("import_dataset", "folder", str(fx.path), "--name", "x", "--size", "32")
    imageset = ImageSet.objects.get(name="x")
    assert imageset.status == ImageSet.Status.READY
    assert (imageset.channels, imageset.modality) == (1, "other")
    assert imageset.label_names == ["background", "class1", "class2"]
    assert imageset.preprocessing["square"] == "pad"
    assert imageset.preprocessing["png"] == "16-bit grayscale"
    rows = list(imageset.images.order_by("index"))
    assert [r.subject for r in rows] == ["img_000", "img_001", "img_002"]
    for row in rows:
        item = fx.by_stem(row.subject)
        with PILImage.open(row.path) as pil:
            assert pil.mode == "I;16" and pil.size == (32, 32)
            stored = np.asarray(pil).astype(np.uint16)
        with PILImage.open(row.mask_path) as pil:
            assert pil.mode == "L"
            mask = np.asarray(pil)
        assert np.array_equal(stored[4:28], item.pixels)
        assert not stored[:4].any() and not stored[28:].any()
        assert np.array_equal(mask[4:28], item.mask)
        assert not mask[:4].any() and not mask[28:].any()
        assert row.metadata["source"] == item.path.name


@pytest.mark.django_db
def test_import_command_rgb_folder_gives_8_bit_rgb(tmp_path):
    fx = make_folder(tmp_path / "ds", n=2, kind="rgb", size=(32, 32), masks=False)
    call_command("import_dataset", "folder", str(fx.path), "--name", "x", "--size", "32")
    imageset = ImageSet.objects.get(name="x")
    assert imageset.channels == 3 and imageset.label_names == []
    for row in imageset.images.all():
        assert row.mask_file == ""
        with PILImage.open(row.path) as pil:
            assert pil.mode == "RGB"
            assert np.array_equal(np.asarray(pil), fx.by_stem(row.subject).pixels)


def _folder_breakage(tmp_path: Path, how: str) -> tuple[Path, str]:
    ds = tmp_path / "ds"
    if how == "empty":
        ds.mkdir()
        (ds / ".DS_Store").write_bytes(b"junk")
        return ds, "no images found in"
    if how == "mixed_channels":
        make_folder(ds, n=3, kind=["gray8", "rgb", "gray8"])
        return ds, "img_001.png is colour (3 channels)"
    if how == "some_masks":
        make_folder(ds, n=3, masks=[True, True, False])
        return ds, "1 of 3 images have no mask"
    if how == "truncated":
        fx = make_folder(ds, n=3, kind="gray16")
        truncate(fx.images[1].path, 0.5)
        return ds, "img_001.png: cannot read the image"
    if how == "unknown_label":
        make_folder(ds, n=2, labels=["background", "organ"])
        return ds, "unknown label"
    raise AssertionError(how)


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["empty", "mixed_channels", "some_masks", "truncated", "unknown_label"])
def test_import_command_failure_leaves_nothing(tmp_path, how):
    path, fragment = _folder_breakage(tmp_path, how)
    with pytest.raises(CommandError, match="import failed") as info:
        call_command("import_dataset", "folder", str(path), "--name", "x", "--size", "32")
    assert fragment in str(info.value)
    _nothing_left()


def test_pixels_helpers_match_fabricator():
    # Guard for the fabricator itself: the 16-bit gradient really uses values an 8-bit image cannot hold.
    pixels = folder_pixels("gray16", folder_mask((24, 32)))
    assert pixels.dtype == np.uint16 and np.any(pixels % 257 != 0)


def test_decompression_bomb_is_a_dataset_error(tmp_path, monkeypatch):
    fx = make_folder(tmp_path / "ds", n=1, size=(40, 40), masks=False)
    # Pillow refuses images over 2 x MAX_IMAGE_PIXELS with DecompressionBombError (not an OSError).
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 400)
    with pytest.raises(DatasetError, match=r"img_000\.png: the image is too large to decode safely"):
        read_all(fx.path)


def test_progress_runs_once_from_0_to_1_across_scan_and_read(tmp_path):
    fx = make_folder(tmp_path / "ds", n=4)
    seen: list[float] = []
    header, samples = folder.open_dataset(fx.path, ImportOptions(), lambda fraction, message: seen.append(fraction))
    list(samples)
    assert seen == sorted(seen) and seen[0] == 0.0 and seen[-1] < 1.0
    assert len(seen) == 8  # four masks scanned, four images read
