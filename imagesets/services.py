"""Writes for image sets: creating imports, running them atomically, deleting sets."""

import dataclasses
import hashlib
import logging
import shutil
import stat
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

import numpy as np
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from config.jobs import JobProgress, job_claim
from imagesets import canonical
from imagesets.importers import FORMATS, DatasetError, DatasetHeader, ImportOptions, Sample, get_importer
from imagesets.models import Image, ImageSet

logger = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]
MIN_SIZE, MAX_SIZE = 16, 1024


class ImportRequestError(ValueError):
    """The import request itself is invalid (before any work starts)."""


def import_path_check(raw_path: str) -> Path:
    """Resolve a server path and refuse anything outside IMPORT_ROOTS (symlinks resolved first)."""
    if not raw_path or not raw_path.strip():
        raise ImportRequestError("Give the path of a folder to import.")
    path = Path(raw_path.strip())
    roots = [Path(r).resolve() for r in settings.IMPORT_ROOTS]
    if not path.is_absolute():
        # Relative paths are taken relative to the first import root.
        if not roots:
            raise ImportRequestError("No IMPORT_ROOTS are configured on this server.")
        path = roots[0] / path
    resolved = path.resolve()
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(r) for r in roots) or "(none configured)"
        raise ImportRequestError(f"{raw_path} is outside the allowed import folders: {allowed}.")
    if not resolved.exists():
        raise ImportRequestError(f"{raw_path} does not exist on the server.")
    return resolved


def _validate_request(*, name: str, fmt: str, options: ImportOptions) -> None:
    if fmt not in FORMATS:
        raise ImportRequestError(f"Unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}.")
    if not name or not name.strip():
        raise ImportRequestError("Give the new image set a name.")
    if ImageSet.objects.filter(name=name.strip()).exists():
        raise ImportRequestError(f"An image set named {name.strip()!r} already exists.")
    if not MIN_SIZE <= options.size <= MAX_SIZE:
        raise ImportRequestError(f"Size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {options.size}.")
    if fmt == "phantom" and not 2 <= options.subjects <= 500:
        raise ImportRequestError("A phantom set needs between 2 and 500 subjects.")


@transaction.atomic
def imageset_import_create(
    *,
    name: str,
    fmt: str,
    source: str,
    options: ImportOptions,
    user=None,
    description: str = "",
    restrict_to_import_roots: bool = True,
    enqueue: bool = True,
) -> ImageSet:
    """Create a queued import and (optionally) enqueue its job once the row is committed.

    Web and API imports are restricted to IMPORT_ROOTS; the command line (run by an operator with
    shell access) is not.
    """
    _validate_request(name=name, fmt=fmt, options=options)
    if fmt == "phantom":
        if source not in ("cardiac", "liver"):
            raise ImportRequestError("For phantoms, the path must be 'cardiac' or 'liver'.")
        source_path = source
    elif restrict_to_import_roots:
        source_path = str(import_path_check(source))
    else:
        resolved = Path(source).expanduser().resolve()
        if not resolved.exists():
            raise ImportRequestError(f"{source} does not exist.")
        source_path = str(resolved)
    imageset = ImageSet.objects.create(
        name=name.strip(),
        description=description,
        source_format=fmt,
        source_path=source_path,
        import_options=dataclasses.asdict(options),
        created_by=user if user is not None and user.is_authenticated else None,
    )
    if enqueue:
        _enqueue_import(imageset.pk)
    return imageset


@transaction.atomic
def imageset_import_from_upload(
    *, name: str, fmt: str, upload: UploadedFile, options: ImportOptions, user=None, description: str = ""
) -> ImageSet:
    """Store an uploaded zip under MEDIA_ROOT/uploads; the job extracts it safely and imports it."""
    _validate_request(name=name, fmt=fmt, options=options)
    if fmt == "phantom":
        raise ImportRequestError("Phantoms are generated, not uploaded.")
    if upload.size > settings.MAX_UPLOAD_BYTES:
        raise ImportRequestError(
            f"The upload is {upload.size:,} bytes; the limit is {settings.MAX_UPLOAD_BYTES:,} bytes."
        )
    uploads = Path(settings.MEDIA_ROOT) / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    zip_path = uploads / f"{uuid.uuid4()}.zip"
    with zip_path.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    try:
        if not zipfile.is_zipfile(zip_path):
            raise ImportRequestError("The upload is not a zip file.")
        imageset = ImageSet.objects.create(
            name=name.strip(),
            description=description,
            source_format=fmt,
            source_path=str(zip_path),
            import_options={**dataclasses.asdict(options), "uploaded_zip": True, "upload_name": upload.name},
            created_by=user if user is not None and user.is_authenticated else None,
        )
    except BaseException:
        # Nothing of a refused upload stays on disk.
        zip_path.unlink(missing_ok=True)
        raise
    _enqueue_import(imageset.pk)
    return imageset


def _enqueue_import(imageset_id: int) -> None:
    from imagesets.tasks import imageset_import

    transaction.on_commit(lambda: imageset_import.enqueue(imageset_id))


def safe_extract_zip(zip_path: Path, target: Path, *, max_bytes: int) -> Path:
    """Extract a zip refusing absolute paths, '..', symlinks and more than max_bytes of content.

    Returns the folder to import: the single top-level folder if the zip has one, else target.
    """
    target.mkdir(parents=True, exist_ok=False)
    written = 0
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for info in archive.infolist():
                name = info.filename.replace("\\", "/")
                parts = PurePosixPath(name).parts
                if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
                    raise DatasetError(f"The zip entry {info.filename!r} would escape the upload folder.")
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise DatasetError(f"The zip entry {info.filename!r} is a symbolic link; links are refused.")
                destination = (target / name).resolve()
                if not destination.is_relative_to(target.resolve()):
                    raise DatasetError(f"The zip entry {info.filename!r} would escape the upload folder.")
                if info.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                # Count real bytes while copying: declared sizes in a zip can lie (zip bombs).
                with archive.open(info) as src, destination.open("wb") as dst:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > max_bytes:
                            raise DatasetError(
                                f"The zip expands to more than the limit of {max_bytes:,} bytes (MAX_UNZIPPED_BYTES)."
                            )
                        dst.write(chunk)
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"The upload is not a valid zip file: {exc}") from None
    entries = [p for p in target.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return target


def _claim(imageset_id: int) -> ImageSet | None:
    """Atomically move a queued (or stale) import to importing; None if another worker has it."""
    claimed = job_claim(
        ImageSet,
        imageset_id,
        queued=ImageSet.Status.QUEUED,
        running=ImageSet.Status.IMPORTING,
        stale_after=ImageSet.STALE_AFTER,
        progress=0.0,
        error="",
    )
    return ImageSet.objects.get(pk=imageset_id) if claimed else None


def imageset_import_run(*, imageset_id: int, echo: ProgressFn | None = None) -> ImageSet | None:
    """Run a queued import. Safe to call twice: a set that is not queued (or stale) is left alone.

    Steps: 1. claim the row; 2. (uploads) extract the zip safely; 3. read, canonicalise and write every
    sample into the set's own folder; 4. create every Image row and mark the set ready in one
    transaction. On any failure the folder is removed and the set is marked failed with the message,
    so nothing is ever half-imported.
    """
    options_dict = {}
    state: dict = {}

    def produce(imageset: ImageSet, progress: ProgressFn) -> tuple[DatasetHeader, Iterator[Sample], ImportOptions]:
        options_dict.update(imageset.import_options)
        uploaded = options_dict.pop("uploaded_zip", False)
        options_dict.pop("upload_name", None)
        options = ImportOptions(**options_dict)
        source = imageset.source_path
        if uploaded:
            state["zip"] = Path(source)
            state["extracted"] = Path(settings.MEDIA_ROOT) / "uploads" / f"extract-{imageset.uid}"
            shutil.rmtree(state["extracted"], ignore_errors=True)
            progress(0.0, "extracting the upload")
            source = str(safe_extract_zip(Path(source), state["extracted"], max_bytes=settings.MAX_UNZIPPED_BYTES))
        header, samples = get_importer(imageset.source_format)(Path(source), options, progress)
        return header, samples, options

    try:
        return imageset_fill_run(imageset_id=imageset_id, produce=produce, echo=echo)
    finally:
        if "extracted" in state:
            shutil.rmtree(state["extracted"], ignore_errors=True)
        if "zip" in state:
            state["zip"].unlink(missing_ok=True)


Producer = Callable[[ImageSet, ProgressFn], tuple[DatasetHeader, Iterator[Sample], ImportOptions]]


def imageset_fill_run(*, imageset_id: int, produce: Producer, echo: ProgressFn | None = None) -> ImageSet | None:
    """The one writer of image sets, for imports and for GAN samples alike.

    Claims a queued (or stale) set, asks `produce` for the header and samples, canonicalises and writes
    every sample, then creates all Image rows and marks the set ready in one transaction. On failure the
    set's folder is removed and the set is marked failed with the reason. Returns None if the set was not
    claimable (another worker has it, or it already finished).
    """
    imageset = _claim(imageset_id)
    if imageset is None:
        return None
    progress = JobProgress(ImageSet, imageset.pk, echo)
    try:
        shutil.rmtree(imageset.folder, ignore_errors=True)
        header, samples, options = produce(imageset, progress)
        rows = _write_samples(imageset, header, samples, options, progress)
        with transaction.atomic():
            Image.objects.bulk_create(rows, batch_size=500)
            digest = hashlib.sha256()
            for row in rows:
                digest.update(f"{row.subject}|{row.split}|{row.checksum}|{row.mask_checksum}\n".encode())
            ImageSet.objects.filter(pk=imageset.pk).update(
                status=ImageSet.Status.READY,
                modality=header.modality,
                channels=header.channels,
                height=options.size,
                width=options.size,
                label_names=header.label_names,
                preprocessing={
                    **header.preprocessing,
                    "format": imageset.source_format,
                    "size": options.size,
                    "square": header.square,
                    "resize_filter": canonical.RESIZE_FILTER,
                    "mask_resize_filter": "nearest",
                    "png": "16-bit grayscale" if header.channels == 1 else "8-bit RGB",
                    "skip_empty": options.skip_empty,
                    "split_seed": options.split_seed,
                },
                content_hash=digest.hexdigest(),
                progress=1.0,
                progress_message=f"{len(rows)} images",
                finished_at=timezone.now(),
                heartbeat_at=timezone.now(),
            )
    except Exception as exc:
        shutil.rmtree(imageset.folder, ignore_errors=True)
        if isinstance(exc, DatasetError | canonical.CanonicalError | ImportRequestError):
            message = str(exc)
        else:
            logger.exception("writing image set %s failed", imageset.pk)
            message = f"Unexpected error ({type(exc).__name__}): {exc}"
        ImageSet.objects.filter(pk=imageset.pk).update(
            status=ImageSet.Status.FAILED, error=message, finished_at=timezone.now()
        )
    imageset.refresh_from_db()
    return imageset


def _write_samples(
    imageset: ImageSet, header: DatasetHeader, samples: Iterator[Sample], options: ImportOptions, progress: ProgressFn
) -> list[Image]:
    n_classes = max(len(header.label_names), 1)
    images_dir = imageset.folder / "images"
    masks_dir = imageset.folder / "masks"
    images_dir.mkdir(parents=True, exist_ok=True)
    rows: list[Image] = []
    media_root = Path(settings.MEDIA_ROOT)
    for sample in samples:
        if header.label_names and sample.mask is None:
            raise DatasetError(f"subject {sample.subject}: an image has no mask while the set has labels")
        where = f"subject {sample.subject}, slice {sample.slice_index}"
        # "Empty" is judged on the source mask: a small structure may vanish when shrunk.
        if options.skip_empty and sample.mask is not None and not np.any(sample.mask):
            continue
        try:
            image, mask = canonical.canonicalise(
                sample.image,
                sample.mask if header.label_names else None,
                size=options.size,
                channels=header.channels,
                n_classes=n_classes,
                square=header.square,
            )
        except canonical.CanonicalError as exc:
            raise DatasetError(f"{where}: {exc}") from None
        index = len(rows)
        metadata = dict(sample.metadata)
        if "pixel_spacing_mm" in metadata:
            # HD95 in millimetres needs the spacing of the canonical image, not of the native one.
            metadata["canonical_pixel_spacing_mm"] = canonical.canonical_spacing(
                sample.image, header.square, options.size, metadata["pixel_spacing_mm"]
            )
        image_bytes = canonical.encode_image_png(image)
        image_path = images_dir / f"{index:06d}.png"
        image_path.write_bytes(image_bytes)
        mask_rel, mask_sum = "", ""
        if mask is not None:
            masks_dir.mkdir(exist_ok=True)
            mask_bytes = canonical.encode_mask_png(mask)
            mask_path = masks_dir / f"{index:06d}.png"
            mask_path.write_bytes(mask_bytes)
            mask_rel, mask_sum = str(mask_path.relative_to(media_root)), canonical.sha256(mask_bytes)
            metadata["label_pixels"] = np.bincount(mask.ravel(), minlength=n_classes).tolist()
        rows.append(
            Image(
                imageset=imageset,
                index=index,
                subject=sample.subject,
                slice_index=sample.slice_index,
                frame=sample.frame,
                split=sample.split,
                file=str(image_path.relative_to(media_root)),
                mask_file=mask_rel,
                checksum=canonical.sha256(image_bytes),
                mask_checksum=mask_sum,
                metadata=metadata,
            )
        )
    if not rows:
        raise DatasetError(
            "No images were found to import" + (" (all slices were empty)" if options.skip_empty else ".")
        )
    return rows


@transaction.atomic
def imageset_delete(*, imageset: ImageSet) -> None:
    folder = imageset.folder
    imageset.delete()
    transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))
