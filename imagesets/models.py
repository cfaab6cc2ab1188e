import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone


class Modality(models.TextChoices):
    CARDIAC_MRI = "cardiac_mri", "Cardiac cine-MRI"
    LIVER_CT = "liver_ct", "Liver CT"
    FUNDUS = "fundus", "Retinal fundus (RGB)"
    OTHER = "other", "Other"


class Split(models.TextChoices):
    TRAIN = "train", "train"
    VAL = "val", "val"
    TEST = "test", "test"


class ImageSetQuerySet(models.QuerySet):
    def ready(self) -> "ImageSetQuerySet":
        return self.filter(status=ImageSet.Status.READY)

    def real(self) -> "ImageSetQuerySet":
        return self.filter(kind=ImageSet.Kind.REAL)

    def synthetic(self) -> "ImageSetQuerySet":
        return self.filter(kind=ImageSet.Kind.SYNTHETIC)


class ImageSet(models.Model):
    """A set of images in one canonical form: same size and channels, intensities in [0, 1]."""

    class Kind(models.TextChoices):
        REAL = "real", "real"
        SYNTHETIC = "synthetic", "synthetic"

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        IMPORTING = "importing", "importing"
        READY = "ready", "ready"
        FAILED = "failed", "failed"

    # A job whose heartbeat is older than this is considered dead and may be taken up again.
    STALE_AFTER = timedelta(minutes=10)

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    modality = models.CharField(max_length=20, choices=Modality.choices, default=Modality.OTHER)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.REAL)
    height = models.PositiveIntegerField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    channels = models.PositiveSmallIntegerField(null=True, blank=True)
    # label_names[i] is the name of class index i in the masks; index 0 is background.
    label_names = models.JSONField(default=list, blank=True)
    # How raw data became canonical: format, window or percentiles, square policy, resize filter, size.
    preprocessing = models.JSONField(default=dict, blank=True)
    # Where the images came from, as plain data (for synthetic sets: run, checkpoint, architecture,
    # training set); never a foreign key into another app.
    provenance = models.JSONField(default=dict, blank=True)
    source_format = models.CharField(max_length=20, blank=True)
    source_path = models.CharField(max_length=1000, blank=True)
    import_options = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    progress_message = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ImageSetQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def folder(self) -> Path:
        """Where this set's canonical files live (absolute)."""
        return Path(settings.MEDIA_ROOT) / "imagesets" / str(self.uid)

    @property
    def has_masks(self) -> bool:
        return len(self.label_names) > 1

    @property
    def is_stale(self) -> bool:
        return (
            self.status == self.Status.IMPORTING
            and self.heartbeat_at is not None
            and timezone.now() - self.heartbeat_at > self.STALE_AFTER
        )

    @property
    def bit_depth(self) -> int | None:
        if self.channels is None:
            return None
        return 16 if self.channels == 1 else 8


class Image(models.Model):
    """One canonical image (and optional class-index mask) of a set."""

    imageset = models.ForeignKey(ImageSet, on_delete=models.CASCADE, related_name="images")
    index = models.PositiveIntegerField(help_text="Position in the set, 0-based.")
    subject = models.CharField(max_length=100, help_text="Patient or subject id.")
    slice_index = models.IntegerField(default=0)
    frame = models.IntegerField(null=True, blank=True)
    split = models.CharField(max_length=5, choices=Split.choices)
    # Paths relative to MEDIA_ROOT.
    file = models.CharField(max_length=300)
    mask_file = models.CharField(max_length=300, blank=True)
    checksum = models.CharField(max_length=64, help_text="SHA-256 of the canonical PNG.")
    mask_checksum = models.CharField(max_length=64, blank=True)
    # Pixel spacing (mm), source file, frame phase, label counts, seed and checkpoint for generated images.
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["imageset", "index"]
        constraints = [models.UniqueConstraint(fields=["imageset", "index"], name="image_unique_index")]
        indexes = [models.Index(fields=["imageset", "split"]), models.Index(fields=["imageset", "subject"])]

    def __str__(self) -> str:
        return f"{self.imageset.name}#{self.index}"

    @property
    def path(self) -> Path:
        return Path(settings.MEDIA_ROOT) / self.file

    @property
    def mask_path(self) -> Path | None:
        return Path(settings.MEDIA_ROOT) / self.mask_file if self.mask_file else None
