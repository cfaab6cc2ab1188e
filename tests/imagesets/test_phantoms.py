"""Procedural phantoms: determinism, anatomy that matches the labels, windowing, splits, and a command import."""

from itertools import takewhile
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from scipy import ndimage

from imagesets import phantoms
from imagesets.canonical import decode_image_png, decode_mask_png
from imagesets.importers.base import DatasetError, ImportOptions, Sample, assign_splits
from imagesets.models import ImageSet

CROSS = ndimage.generate_binary_structure(2, 1)  # 4-connectivity
RV, MYO, LV = 1, 2, 3


def read_all(kind: str, **options) -> tuple:
    header, samples = phantoms.open_dataset(Path(kind), ImportOptions(**options), None)
    return header, list(samples)


def by_phase(samples: list[Sample]) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {"ED": [], "ES": []}
    for s in samples:
        out[s.metadata["phase"]].append(s)
    return out


@pytest.fixture(scope="module")
def cardiac() -> list[list[Sample]]:
    """Three cardiac subjects (about 1 s), generated once for the module."""
    return [phantoms.cardiac_subject(0, k) for k in range(3)]


@pytest.fixture(scope="module")
def liver() -> list[list[Sample]]:
    return [phantoms.liver_subject(0, k) for k in range(2)]


# ------------------------------------------------------------------------------------------- header


def test_headers_match_the_real_importers():
    header, _ = phantoms.open_dataset(Path("cardiac"), ImportOptions(), None)
    assert (header.modality, header.channels, header.square) == ("cardiac_mri", 1, "pad")
    assert header.label_names == ["background", "RV", "MYO", "LV"]
    assert header.preprocessing["normalisation"] == "percentiles"
    assert header.preprocessing["percentiles"] == [0.5, 99.5]
    header, _ = phantoms.open_dataset(Path("liver"), ImportOptions(), None)
    assert (header.modality, header.channels, header.square) == ("liver_ct", 1, "pad")
    assert header.label_names == ["background", "liver"]
    assert header.preprocessing["window"] == {"center": 60, "width": 400}


def test_unknown_phantom_is_refused():
    with pytest.raises(DatasetError, match="cardiac.*liver"):
        phantoms.open_dataset(Path("brain"), ImportOptions(), None)


# ------------------------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_arrays():
    first = phantoms.liver_subject(3, 1)
    again = phantoms.liver_subject(3, 1)
    other = phantoms.liver_subject(4, 1)
    assert len(first) == len(again)
    for a, b in zip(first, again):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
        assert a.metadata == b.metadata
    assert not np.array_equal(first[0].image, other[0].image)


def test_a_subject_does_not_depend_on_how_many_are_asked_for():
    def first_subject(n: int) -> list[Sample]:
        _, samples = phantoms.open_dataset(Path("cardiac"), ImportOptions(subjects=n, seed=5), None)
        # The iterator is lazy: stop after subject 0, so only one subject is generated.
        return list(takewhile(lambda s: s.subject == "phantom-cardiac-000", samples))

    alone, among_many = first_subject(1), first_subject(30)
    assert len(alone) == len(among_many) > 0
    for a, b in zip(alone, among_many):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
        assert (a.slice_index, a.frame) == (b.slice_index, b.frame)


# ------------------------------------------------------------------------------------------ cardiac


def test_cardiac_samples_are_canonical_inputs(cardiac):
    for samples in cardiac:
        shapes = {s.image.shape for s in samples}
        assert len(shapes) == 1
        rows, cols = shapes.pop()
        assert 160 <= rows <= 224 and 160 <= cols <= 224
        phases = by_phase(samples)
        assert len(phases["ED"]) == len(phases["ES"]) and 8 <= len(phases["ED"]) <= 10
        assert [s.slice_index for s in phases["ED"]] == list(range(len(phases["ED"])))
        assert {s.frame for s in phases["ED"]} == {1}
        assert len({s.frame for s in phases["ES"]}) == 1 and phases["ES"][0].frame > 1
        for s in samples:
            assert s.image.dtype == np.float32 and s.image.min() >= 0.0 and s.image.max() <= 1.0
            assert s.mask.dtype == np.uint8 and s.mask.shape == s.image.shape and s.mask.max() <= 3
            spacing = s.metadata["pixel_spacing_mm"]
            assert spacing[0] == spacing[1] and 1.4 <= spacing[0] <= 1.8
            assert s.metadata["slice_thickness_mm"] > 0
        # Per-volume percentile normalisation: each phase's stack spans [0, 1].
        for phase in phases.values():
            stack = np.stack([s.image for s in phase])
            assert stack.min() == 0.0 and stack.max() == 1.0


def test_lv_is_ringed_by_myocardium_and_rv_wraps_the_septum(cardiac):
    ringed = adjacent = apical_without_rv = 0
    for samples in cardiac:
        for s in samples:
            lv, rv, myo = s.mask == LV, s.mask == RV, s.mask == MYO
            if lv.any():
                ring = ndimage.binary_dilation(lv, CROSS) & ~lv
                assert np.all(s.mask[ring] == MYO), "every LV pixel's neighbours are LV or MYO"
                ringed += 1
                assert myo.sum() > 0.2 * lv.sum()
            if rv.any():
                grown = ndimage.binary_dilation(rv, CROSS)
                assert (grown & myo).any(), "the RV lies against the septum"
                assert not (grown & lv).any(), "the septum separates RV and LV"
                # Radiological short-axis view: the RV is on the image left of the LV.
                assert np.nonzero(rv)[1].mean() < np.nonzero(myo)[1].mean()
                adjacent += 1
            if myo.any() and not rv.any():
                apical_without_rv += 1
    assert ringed > 20 and adjacent > 20 and apical_without_rv > 0


def test_brightness_follows_the_labels(cardiac):
    # bSSFP: blood bright, myocardium dark, lungs and air darker still.
    for samples in cardiac:
        for s in samples:
            if (s.mask == LV).sum() > 50 and (s.mask == MYO).sum() > 50:
                lv = float(np.median(s.image[s.mask == LV]))
                myo = float(np.median(s.image[s.mask == MYO]))
                assert lv > myo + 0.3
                if (s.mask == RV).sum() > 50:
                    assert float(np.median(s.image[s.mask == RV])) > myo + 0.3


def test_the_lv_cavity_shrinks_and_the_wall_thickens_at_end_systole(cardiac):
    for samples in cardiac:
        phases = by_phase(samples)
        for ed, es in zip(phases["ED"], phases["ES"]):
            assert ed.slice_index == es.slice_index
            lv_ed, lv_es = int((ed.mask == LV).sum()), int((es.mask == LV).sum())
            if lv_ed:
                assert lv_ed > lv_es
        lv_volume = {p: sum(int((s.mask == LV).sum()) for s in phases[p]) for p in phases}
        myo_volume = {p: sum(int((s.mask == MYO).sum()) for s in phases[p]) for p in phases}
        assert lv_volume["ES"] < 0.9 * lv_volume["ED"]
        # The myocardium keeps its volume (it thickens as the cavity empties).
        assert 0.85 < myo_volume["ES"] / myo_volume["ED"] < 1.15


def test_some_slices_have_no_labels(cardiac, liver):
    # Slices above the base or beyond the apex (cardiac), above the dome or below the tip (liver):
    # --skip-empty has something to skip.
    for subjects in (cardiac, liver):
        masks = [s.mask for samples in subjects for s in samples]
        assert any(not m.any() for m in masks) and sum(bool(m.any()) for m in masks) > len(masks) / 2


# -------------------------------------------------------------------------------------------- liver


def test_liver_is_about_60_hu_on_the_image_left_and_largest_mid_stack(liver):
    for samples in liver:
        assert [s.slice_index for s in samples] == list(range(len(samples)))
        areas = [int(s.mask.sum()) for s in samples]
        assert 0 < int(np.argmax(areas)) < len(samples) - 1
        assert areas[0] == 0 and areas[-1] == 0  # below the tip and above the dome
        values = np.concatenate([s.image[s.mask == 1] for s in samples])
        # normalise_window(center=60, width=400) maps HU h to (h + 140) / 400.
        mean_hu = float(values.mean()) * 400.0 - 140.0
        assert 45.0 < mean_hu < 75.0
        for s in samples:
            assert s.image.dtype == np.float32 and s.image.min() >= 0.0 and s.image.max() <= 1.0
            assert set(np.unique(s.mask).tolist()) <= {0, 1}
            assert 192 <= s.image.shape[0] <= 256 and s.image.shape[0] == s.image.shape[1]
            # Air outside the body is at the bottom of the window.
            assert float(s.image[:5, :5].mean()) < 0.02
            if areas[s.slice_index] > 0.5 * max(areas):
                # Radiological convention: the patient's right, where the liver is, is on the image left.
                assert np.nonzero(s.mask)[1].mean() < s.image.shape[1] / 2


# ----------------------------------------------------------------------------- splits and progress


@pytest.fixture
def stub_subjects(monkeypatch):
    """Replace the (slow) renderers by one tiny sample per subject: enough for splits and progress."""

    def stub(seed: int, index: int) -> list[Sample]:
        image = np.full((4, 4), index / 100.0, dtype=np.float32)
        return [Sample(subject="", split="", image=image, mask=np.zeros((4, 4), np.uint8))]

    monkeypatch.setattr(phantoms, "cardiac_subject", stub)
    monkeypatch.setattr(phantoms, "liver_subject", stub)


@pytest.mark.usefixtures("stub_subjects")
def test_splits_are_by_subject_and_seeded():
    options = {"subjects": 20, "val_fraction": 0.1, "test_fraction": 0.2}
    _, samples = read_all("liver", seed=3, **options)
    names = [f"phantom-liver-{k:03d}" for k in range(20)]
    assert [s.subject for s in samples] == names
    expected = assign_splits(names, seed=3, val_fraction=0.1, test_fraction=0.2)
    assert {s.subject: s.split for s in samples} == expected
    assert sorted(expected.values()).count("test") == 4 and sorted(expected.values()).count("val") == 2
    # An explicit split seed takes precedence over the generation seed.
    _, resplit = read_all("liver", seed=3, split_seed=11, **options)
    assert {s.subject: s.split for s in resplit} == assign_splits(names, seed=11, val_fraction=0.1, test_fraction=0.2)


@pytest.mark.usefixtures("stub_subjects")
def test_progress_is_reported_per_subject():
    calls = []
    _, samples = phantoms.open_dataset(Path("cardiac"), ImportOptions(subjects=4), lambda f, m: calls.append((f, m)))
    list(samples)
    assert [f for f, _ in calls] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert "subject 2/4" in calls[1][1]


# ---------------------------------------------------------------------------------------- command


@pytest.mark.django_db
def test_import_command_makes_a_ready_cardiac_set(cardiac):
    call_command("import_dataset", "phantom", "cardiac", "--name", "demo", "--size", "64", "--subjects", "4")
    imageset = ImageSet.objects.get(name="demo")
    assert imageset.status == ImageSet.Status.READY
    assert (imageset.modality, imageset.channels, imageset.height, imageset.width) == ("cardiac_mri", 1, 64, 64)
    assert imageset.label_names == ["background", "RV", "MYO", "LV"]
    assert imageset.preprocessing["phantom"] == "cardiac" and imageset.preprocessing["format"] == "phantom"
    images = list(imageset.images.all())
    # Seed 0, as the fixture: subjects 0-2 are the fixture's, whatever the number of subjects.
    expected = sum(len(samples) for samples in cardiac) + len(phantoms.cardiac_subject(0, 3))
    assert len(images) == expected
    assert {i.subject for i in images} == {f"phantom-cardiac-{k:03d}" for k in range(4)}
    assert {i.metadata["phase"] for i in images} == {"ED", "ES"}
    for subject in {i.subject for i in images}:
        assert len({i.split for i in images if i.subject == subject}) == 1
    seen = set()
    for image in images[:: max(1, len(images) // 12)]:
        pixels = decode_image_png(str(image.path))
        mask = decode_mask_png(str(image.mask_path))
        assert pixels.shape == mask.shape == (64, 64)
        assert pixels.min() >= 0.0 and pixels.max() <= 1.0
        seen |= set(np.unique(mask).tolist())
        assert image.metadata["label_pixels"] == np.bincount(mask.ravel(), minlength=4).tolist()
    assert seen == {0, 1, 2, 3}
