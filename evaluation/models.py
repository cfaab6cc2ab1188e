import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import models

from imagesets.models import ImageSet

METRIC_CHOICES = [
    ("fid", "FID (pytorch-fid protocol)"),
    ("kid", "KID"),
    ("prdc", "Precision / recall / density / coverage"),
    ("swd", "Sliced Wasserstein distance"),
    ("memorisation", "Memorisation audit"),
    ("dice", "U-Net Dice (train on generated, test on real)"),
]
METRIC_NAMES = [name for name, _ in METRIC_CHOICES]
INCEPTION_METRICS = {"fid", "kid", "prdc"}


class Evaluation(models.Model):
    """One candidate set scored against one real reference set with the chosen metrics."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    class DiceArm(models.TextChoices):
        SYNTHETIC = "synthetic", "train on generated"
        REAL = "real", "train on real (baseline)"
        REAL_PLUS_SYNTHETIC = "real_plus_synthetic", "train on real + generated"

    STALE_AFTER = timedelta(minutes=10)

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Evaluations launched together share a batch id (one reference, many candidates).
    batch = models.UUIDField(default=uuid.uuid4, db_index=True)
    reference = models.ForeignKey(ImageSet, on_delete=models.CASCADE, related_name="+")
    # Null for the real-data baseline (the U-Net trained on the reference's own training split).
    candidate = models.ForeignKey(ImageSet, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    metrics = models.JSONField(default=list)
    dice_arm = models.CharField(max_length=24, choices=DiceArm.choices, default=DiceArm.SYNTHETIC)
    params = models.JSONField(default=dict, blank=True)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    progress_message = models.CharField(max_length=300, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # {metric: {...numbers...}} plus "unavailable": {metric: reason}.
    results = models.JSONField(default=dict, blank=True)
    # How every number was produced: implementation, resize, layer, weights hash, counts, versions, seconds.
    protocol = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.candidate or 'real baseline'} vs {self.reference}"

    @property
    def generator_label(self) -> str:
        if self.candidate is None:
            return "real data (baseline)"
        provenance = self.candidate.provenance or {}
        return str(provenance.get("architecture") or self.candidate.name)

    @property
    def folder(self) -> Path:
        return Path(settings.MEDIA_ROOT) / "evaluations" / str(self.uid)


class FeatureCache(models.Model):
    """Inception features of a real set, keyed by its content hash and the feature protocol."""

    content_hash = models.CharField(max_length=64)
    split = models.CharField(max_length=10)
    protocol_key = models.CharField(max_length=64, help_text="SHA-256 of the feature protocol (weights, resize).")
    path = models.CharField(max_length=300)
    n_images = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["content_hash", "split", "protocol_key"], name="feature_cache_unique")
        ]

    def __str__(self) -> str:
        return f"features {self.content_hash[:8]} {self.split}"
