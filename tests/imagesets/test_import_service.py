"""The import service: atomic, idempotent, restricted to IMPORT_ROOTS; pages and API show the result."""

import pytest
from django.urls import reverse

from imagesets import services
from imagesets.canonical import decode_image_png, decode_mask_png
from imagesets.importers import ImportOptions
from imagesets.models import Image, ImageSet
from tests.imagesets.fake_importer import make_open_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_format(monkeypatch):
    def use(**kwargs):
        monkeypatch.setattr(services, "get_importer", lambda fmt: make_open_dataset(**kwargs))

    use()
    return use


def start(import_root, name="set", **option_overrides) -> ImageSet:
    return services.imageset_import_create(
        name=name,
        fmt="folder",
        source=str(import_root),
        options=ImportOptions(**{"size": 32, **option_overrides}),
        enqueue=False,
    )


def test_import_writes_canonical_files_and_rows(import_root, fake_format, settings):
    imageset = services.imageset_import_run(imageset_id=start(import_root).pk)
    assert imageset.status == ImageSet.Status.READY
    assert (imageset.height, imageset.width, imageset.channels) == (32, 32, 1)
    assert imageset.label_names == ["background", "thing"]
    assert imageset.preprocessing["square"] == "pad" and imageset.preprocessing["size"] == 32
    assert len(imageset.content_hash) == 64
    images = list(imageset.images.all())
    assert len(images) == 6
    assert {i.split for i in images} == {"train", "test"}
    pixels = decode_image_png(str(images[0].path))
    assert pixels.shape == (32, 32) and pixels.min() >= 0 and pixels.max() <= 1
    mask = decode_mask_png(str(images[0].mask_path))
    assert mask.shape == (32, 32) and set(mask.ravel().tolist()) == {0, 1}
    assert images[0].metadata["label_pixels"][1] == int((mask == 1).sum())


def test_same_data_gives_the_same_content_hash(import_root, fake_format):
    a = services.imageset_import_run(imageset_id=start(import_root, "a").pk)
    b = services.imageset_import_run(imageset_id=start(import_root, "b").pk)
    assert a.content_hash == b.content_hash


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"fail_at": 4}, "sample 4: the file is truncated"), ({"bad_label_at": 3}, "unknown label value(s) [9]")],
)
def test_failure_half_way_leaves_nothing(import_root, fake_format, kwargs, message):
    fake_format(**kwargs)
    imageset = services.imageset_import_run(imageset_id=start(import_root).pk)
    assert imageset.status == ImageSet.Status.FAILED
    assert message in imageset.error
    assert Image.objects.count() == 0
    assert not imageset.folder.exists()


def test_skip_empty_that_empties_everything_is_an_error(import_root, monkeypatch):
    def empty_masks(path, options, progress=None):
        header, samples = make_open_dataset()(path, options, progress)

        def emptied():
            for s in samples:
                s.mask[:] = 0
                yield s

        return header, emptied()

    monkeypatch.setattr(services, "get_importer", lambda fmt: empty_masks)
    imageset = services.imageset_import_run(imageset_id=start(import_root, skip_empty=True).pk)
    assert imageset.status == ImageSet.Status.FAILED
    assert "all slices were empty" in imageset.error


def test_running_twice_does_nothing_the_second_time(import_root, fake_format):
    imageset = start(import_root)
    services.imageset_import_run(imageset_id=imageset.pk)
    hash_before = ImageSet.objects.get(pk=imageset.pk).content_hash
    assert services.imageset_import_run(imageset_id=imageset.pk) is None
    assert Image.objects.filter(imageset=imageset).count() == 6
    assert ImageSet.objects.get(pk=imageset.pk).content_hash == hash_before


def test_stale_import_is_taken_up_again(import_root, fake_format):
    from django.utils import timezone

    imageset = start(import_root)
    ImageSet.objects.filter(pk=imageset.pk).update(
        status=ImageSet.Status.IMPORTING, heartbeat_at=timezone.now() - ImageSet.STALE_AFTER * 2
    )
    assert services.imageset_import_run(imageset_id=imageset.pk).status == ImageSet.Status.READY


def test_fresh_running_import_is_left_alone(import_root, fake_format):
    from django.utils import timezone

    imageset = start(import_root)
    ImageSet.objects.filter(pk=imageset.pk).update(status=ImageSet.Status.IMPORTING, heartbeat_at=timezone.now())
    assert services.imageset_import_run(imageset_id=imageset.pk) is None


def test_path_outside_import_roots_is_refused(tmp_path, import_root):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with pytest.raises(services.ImportRequestError, match="outside the allowed import folders"):
        start(outside)
    # A symlink inside the root that points outside is refused too.
    (import_root / "link").symlink_to(outside)
    with pytest.raises(services.ImportRequestError, match="outside the allowed import folders"):
        start(import_root / "link")
    with pytest.raises(services.ImportRequestError, match="outside"):
        start(str(import_root) + "/../elsewhere")
    assert ImageSet.objects.count() == 0


def test_duplicate_name_and_bad_size_are_refused(import_root, fake_format):
    start(import_root, "taken")
    with pytest.raises(services.ImportRequestError, match="already exists"):
        start(import_root, "taken")
    with pytest.raises(services.ImportRequestError, match="Size must be between"):
        start(import_root, "tiny", size=4)


def test_web_import_enqueues_on_commit_and_runs(
    client, admin_user, import_root, fake_format, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    form = {
        "name": "from web",
        "format": "folder",
        "source": "server",
        "path": str(import_root),
        "size": 32,
        "val_fraction": 0.1,
        "test_fraction": 0.2,
        "subjects": 24,
        "seed": 0,
    }
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(reverse("imagesets:import"), form)
    assert response.status_code == 302
    assert len(callbacks) == 1
    imageset = ImageSet.objects.get(name="from web")
    assert imageset.status == ImageSet.Status.READY
    assert imageset.created_by == admin_user
    page = client.get(reverse("imagesets:detail", args=[imageset.pk])).content.decode()
    assert "overlay.png" in page and "train" in page
    status = client.get(reverse("imagesets:status", args=[imageset.pk])).json()
    assert status["status"] == "ready" and status["progress"] == 1.0


def test_web_import_outside_roots_shows_error_and_creates_nothing(client, admin_user, tmp_path):
    client.force_login(admin_user)
    form = {
        "name": "x",
        "format": "folder",
        "source": "server",
        "path": str(tmp_path),
        "size": 32,
        "val_fraction": 0.1,
        "test_fraction": 0.2,
        "subjects": 24,
        "seed": 0,
    }
    response = client.post(reverse("imagesets:import"), form)
    assert response.status_code == 200
    assert "outside the allowed import folders" in response.content.decode()
    assert ImageSet.objects.count() == 0


def test_failed_import_page_shows_error(client, admin_user, import_root, fake_format):
    fake_format(fail_at=1)
    imageset = services.imageset_import_run(imageset_id=start(import_root).pk)
    client.force_login(admin_user)
    page = client.get(reverse("imagesets:detail", args=[imageset.pk])).content.decode()
    assert "Import failed:" in page and "sample 1: the file is truncated" in page


def test_delete_removes_rows_and_files(
    client, admin_user, import_root, fake_format, django_capture_on_commit_callbacks
):
    imageset = services.imageset_import_run(imageset_id=start(import_root).pk)
    folder = imageset.folder
    assert folder.exists()
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("imagesets:delete", args=[imageset.pk]))
    assert response.status_code == 302
    assert not ImageSet.objects.exists() and not Image.objects.exists()
    assert not folder.exists()


def test_api_lists_sets_and_images(client, admin_user, import_root, fake_format):
    imageset = services.imageset_import_run(imageset_id=start(import_root).pk)
    client.force_login(admin_user)
    sets = client.get("/api/imagesets/").json()
    assert sets["count"] == 1 and sets["results"][0]["n_images"] == 6
    detail = client.get(f"/api/imagesets/{imageset.pk}/").json()
    assert detail["label_names"] == ["background", "thing"]
    images = client.get(f"/api/imagesets/{imageset.pk}/images/?split=test").json()
    assert images["count"] == 2
    first = images["results"][0]
    assert first["image_url"].endswith(".png") and first["mask_url"].endswith("overlay.png")
    assert client.get(first["image_url"]).status_code == 200


def test_canonical_pixel_spacing_is_recorded(import_root, fake_format):
    imageset = services.imageset_import_run(imageset_id=start(import_root).pk)
    image = imageset.images.first()
    # 20 x 30 native at 1 mm, padded to 30 x 30, resized to 32 x 32.
    assert image.metadata["pixel_spacing_mm"] == [1.0, 1.0]
    assert image.metadata["canonical_pixel_spacing_mm"] == [0.9375, 0.9375]
