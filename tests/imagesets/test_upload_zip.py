"""Zip uploads: safe extraction, and the upload -> job -> import path with its clean-up."""

import io
import stat
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from imagesets.importers.base import DatasetError, ImportOptions
from imagesets.models import Image, ImageSet
from imagesets.services import ImportRequestError, imageset_import_from_upload, safe_extract_zip
from tests.imagesets.fabricate_2d import IDRID_LABELS, make_folder, make_idrid


def zip_folder(folder: Path, extra: list[tuple[zipfile.ZipInfo | str, bytes]] = ()) -> bytes:
    """Zip folder as a single top-level folder (like "Compress" in a file manager), then add extra entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, str(path.relative_to(folder.parent)))
        for name, data in extra:
            archive.writestr(name, data)
    return buffer.getvalue()


def symlink_entry(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix, so the mode bits in external_attr count
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def uploads() -> Path:
    return Path(settings.MEDIA_ROOT) / "uploads"


def upload(name: str, data: bytes, fmt: str = "folder", size: int = 32, capture=None) -> ImageSet:
    file = SimpleUploadedFile(name, data, content_type="application/zip")
    # The job is enqueued on commit; the test backend then runs it at once.
    with capture(execute=True):
        imageset = imageset_import_from_upload(name="up", fmt=fmt, upload=file, options=ImportOptions(size=size))
    imageset.refresh_from_db()
    return imageset


def assert_upload_cleaned(imageset: ImageSet | None = None) -> None:
    """The stored zip and its extraction folder are gone, whatever the outcome."""
    folder = uploads()
    assert not folder.exists() or list(folder.iterdir()) == []
    if imageset is not None:
        assert not Path(imageset.source_path).exists()


# ------------------------------------------------------------------------------------ safe_extract_zip


def test_extract_returns_the_single_top_folder(tmp_path):
    fx = make_folder(tmp_path / "src" / "ds", n=2, junk=False)
    data = zip_folder(fx.path, extra=[("__MACOSX/ds/._img_000.png", b"resource fork")])
    (tmp_path / "up.zip").write_bytes(data)
    root = safe_extract_zip(tmp_path / "up.zip", tmp_path / "out", max_bytes=10**6)
    assert root == tmp_path / "out" / "ds"
    assert sorted(p.name for p in root.iterdir()) == ["img_000.png", "img_001.png", "masks"]


def test_extract_of_loose_files_returns_the_target(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.png", b"x")
        archive.writestr("masks/a.png", b"y")
    (tmp_path / "up.zip").write_bytes(buffer.getvalue())
    assert safe_extract_zip(tmp_path / "up.zip", tmp_path / "out", max_bytes=100) == tmp_path / "out"


def _escaping_entries(tmp_path: Path) -> dict[str, tuple]:
    return {
        "dotdot": ("../evil.png", b"evil"),
        "nested_dotdot": ("ds/../../evil.png", b"evil"),
        "absolute": (str(tmp_path / "evil.png"), b"evil"),
        "drive": ("C:/evil.png", b"evil"),
        "backslash": ("..\\evil.png", b"evil"),
        "symlink": symlink_entry("ds/evil.png", "/etc/passwd"),
    }


@pytest.mark.parametrize("kind", ["dotdot", "nested_dotdot", "absolute", "drive", "backslash", "symlink"])
def test_extract_refuses_entries_that_escape(tmp_path, kind):
    fx = make_folder(tmp_path / "src" / "ds", n=1, junk=False)
    (tmp_path / "up.zip").write_bytes(zip_folder(fx.path, extra=[_escaping_entries(tmp_path)[kind]]))
    target = tmp_path / "box" / "out"
    expected = "symbolic link" if kind == "symlink" else "would escape the upload folder"
    with pytest.raises(DatasetError, match=expected):
        safe_extract_zip(tmp_path / "up.zip", target, max_bytes=10**6)
    written = list(tmp_path.rglob("evil.png"))
    assert written == [], written


def test_extract_counts_real_bytes_against_the_limit(tmp_path):
    # 1 MB of zeros deflates to about 1 kB: the declared and compressed sizes must not be trusted.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.bin", bytes(1_000_000))
    assert len(buffer.getvalue()) < 5_000
    (tmp_path / "bomb.zip").write_bytes(buffer.getvalue())
    with pytest.raises(DatasetError, match=r"more than the limit of 100,000 bytes \(MAX_UNZIPPED_BYTES\)"):
        safe_extract_zip(tmp_path / "bomb.zip", tmp_path / "out", max_bytes=100_000)
    assert sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file()) <= 100_000


def test_extract_of_a_non_zip_is_a_dataset_error(tmp_path):
    (tmp_path / "up.zip").write_bytes(b"PK\x03\x04 but not really a zip")
    with pytest.raises(DatasetError, match="not a valid zip"):
        safe_extract_zip(tmp_path / "up.zip", tmp_path / "out", max_bytes=100)


# ------------------------------------------------------------------------------------ the upload path


@pytest.mark.django_db
def test_uploaded_folder_zip_imports_and_is_removed(tmp_path, django_capture_on_commit_callbacks):
    fx = make_folder(tmp_path / "src" / "my dataset", n=3, kind="gray16")
    imageset = upload("my dataset.zip", zip_folder(fx.path), capture=django_capture_on_commit_callbacks)
    assert imageset.status == ImageSet.Status.READY, imageset.error
    assert imageset.images.count() == 3
    assert imageset.label_names == ["background", "class1", "class2"]
    assert imageset.import_options["upload_name"] == "my dataset.zip"
    assert sorted(imageset.images.values_list("subject", flat=True)) == ["img_000", "img_001", "img_002"]
    assert all(row.path.is_file() and row.mask_path.is_file() for row in imageset.images.all())
    assert_upload_cleaned(imageset)


@pytest.mark.django_db
def test_uploaded_idrid_zip_imports(tmp_path, django_capture_on_commit_callbacks):
    # Entry names with spaces and dots, as in the distributed archive.
    fx = make_idrid(tmp_path / "src", n_train=1, n_test=1, size=(30, 45))
    imageset = upload("idrid.zip", zip_folder(fx.segmentation), fmt="idrid", capture=django_capture_on_commit_callbacks)
    assert imageset.status == ImageSet.Status.READY, imageset.error
    assert imageset.label_names == IDRID_LABELS
    assert sorted(imageset.images.values_list("split", flat=True)) == ["test", "train"]
    assert_upload_cleaned(imageset)


def _assert_failed_cleanly(imageset: ImageSet, message: str, tmp_path: Path) -> None:
    assert imageset.status == ImageSet.Status.FAILED
    assert message in imageset.error
    assert not Image.objects.filter(imageset=imageset).exists()
    assert not imageset.folder.exists()
    assert list(tmp_path.rglob("evil.png")) == []
    assert_upload_cleaned(imageset)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_upload_with_escaping_entry_fails(tmp_path, kind, django_capture_on_commit_callbacks):
    fx = make_folder(tmp_path / "src" / "ds", n=2)
    data = zip_folder(fx.path, extra=[_escaping_entries(tmp_path)[kind]])
    imageset = upload("ds.zip", data, capture=django_capture_on_commit_callbacks)
    expected = "is a symbolic link; links are refused" if kind == "symlink" else "would escape the upload folder"
    _assert_failed_cleanly(imageset, expected, tmp_path)


@pytest.mark.django_db
def test_upload_over_unzipped_limit_fails(tmp_path, settings, django_capture_on_commit_callbacks):
    settings.MAX_UNZIPPED_BYTES = 1_000  # the set unzips to about 1.4 kB
    fx = make_folder(tmp_path / "src" / "ds", n=4, kind="gray16")
    imageset = upload("ds.zip", zip_folder(fx.path), capture=django_capture_on_commit_callbacks)
    _assert_failed_cleanly(imageset, "more than the limit of 1,000 bytes (MAX_UNZIPPED_BYTES)", tmp_path)


@pytest.mark.django_db
def test_upload_of_a_broken_dataset_fails_and_cleans_up(tmp_path, django_capture_on_commit_callbacks):
    fx = make_folder(tmp_path / "src" / "ds", n=3, kind=["gray8", "rgb", "gray8"])
    imageset = upload("ds.zip", zip_folder(fx.path), capture=django_capture_on_commit_callbacks)
    _assert_failed_cleanly(imageset, "img_001.png is colour (3 channels)", tmp_path)


@pytest.mark.django_db
def test_upload_over_max_upload_bytes_is_refused(tmp_path, settings):
    settings.MAX_UPLOAD_BYTES = 1_024
    file = SimpleUploadedFile("big.zip", b"\0" * 2_048, content_type="application/zip")
    with pytest.raises(ImportRequestError, match=r"The upload is 2,048 bytes; the limit is 1,024 bytes"):
        imageset_import_from_upload(name="up", fmt="folder", upload=file, options=ImportOptions(size=32))
    assert not ImageSet.objects.exists()
    assert_upload_cleaned()


@pytest.mark.django_db
def test_upload_that_is_not_a_zip_is_refused(tmp_path):
    file = SimpleUploadedFile("photo.zip", b"\x89PNG\r\n\x1a\n not a zip", content_type="application/zip")
    with pytest.raises(ImportRequestError, match="not a zip file"):
        imageset_import_from_upload(name="up", fmt="folder", upload=file, options=ImportOptions(size=32))
    assert not ImageSet.objects.exists()
    assert_upload_cleaned()
