import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone

from imagesets.models import ImageSet

# How the snapshot metrics are shown: label and the factor applied to the value.
METRIC_DISPLAY = {"swd": ("SWD ×10³", 1e3), "kid": ("KID ×10³", 1e3), "fid": ("FID", 1.0)}


class TrainingRun(models.Model):
    """One GAN training run: its fully resolved configuration, state, and where its files are."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        CANCELLED = "cancelled", "cancelled"
        FAILED = "failed", "failed"

    # A running run whose heartbeat is older than this has lost its worker: it is "interrupted".
    STALE_AFTER = timedelta(minutes=3)

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    training_set = models.ForeignKey(ImageSet, on_delete=models.PROTECT, related_name="+")
    training_splits = models.JSONField(default=list)
    arch = models.CharField(max_length=30)
    # What the admin asked for, and the TrainConfig it resolved to (preset + overrides + data facts).
    overrides = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict)
    cloned_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="clones")

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    kimg_done = models.FloatField(default=0.0)
    step = models.PositiveIntegerField(default=0)
    last_stats = models.JSONField(default=dict, blank=True)
    best_metric = models.FloatField(null=True, blank=True)
    device = models.CharField(max_length=100, blank=True)
    environment = models.JSONField(default=dict, blank=True, help_text="Code and library versions.")
    error = models.TextField(blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Seconds spent training across all attempts (for the ETA).
    seconds_running = models.FloatField(default=0.0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def run_dir(self) -> Path:
        return Path(settings.MEDIA_ROOT) / "runs" / str(self.uid)

    @property
    def kimg_total(self) -> float:
        return float(self.config.get("kimg", 0.0))

    @property
    def fraction(self) -> float:
        return min(self.kimg_done / self.kimg_total, 1.0) if self.kimg_total else 0.0

    @property
    def is_interrupted(self) -> bool:
        """Running on paper, but its worker stopped sending heartbeats."""
        return (
            self.status == self.Status.RUNNING
            and self.heartbeat_at is not None
            and timezone.now() - self.heartbeat_at > self.STALE_AFTER
        )

    @property
    def display_status(self) -> str:
        return "interrupted" if self.is_interrupted else self.status

    @property
    def can_resume(self) -> bool:
        return (self.is_interrupted or self.status in (self.Status.CANCELLED, self.Status.FAILED)) and (
            self.latest_checkpoint is not None
        )

    @property
    def selection_metric(self) -> str:
        """The metric that picks the best checkpoint: swd, kid, fid or none."""
        return self.config.get("metric", "swd")

    @property
    def best_metric_label(self) -> str:
        return METRIC_DISPLAY.get(self.selection_metric, ("—", 1.0))[0]

    @property
    def best_metric_scale(self) -> float:
        return METRIC_DISPLAY.get(self.selection_metric, ("—", 1.0))[1]

    @property
    def snapshot_metrics(self) -> list[tuple[str, str, float]]:
        """(field, label, display scale) of the metrics computed at this run's snapshots."""
        if self.selection_metric == "none":
            return []
        names = ["swd", *[m for m in ("kid", "fid") if m in self.config.get("feature_metrics", [])]]
        return [(m, *METRIC_DISPLAY[m]) for m in names]

    @property
    def latest_checkpoint(self) -> "Checkpoint | None":
        return self.checkpoints.order_by("-step").first()

    @property
    def best_checkpoint(self) -> "Checkpoint | None":
        return self.checkpoints.filter(is_best=True).order_by("-step").first()

    @property
    def eta_seconds(self) -> float | None:
        if not self.kimg_done or self.fraction >= 1 or not self.seconds_running:
            return None
        return self.seconds_running / self.kimg_done * (self.kimg_total - self.kimg_done)


class Checkpoint(models.Model):
    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="checkpoints")
    step = models.PositiveIntegerField()
    kimg = models.FloatField()
    path = models.CharField(max_length=400, help_text="Relative to MEDIA_ROOT.")
    # The run's selection metric (config "metric") of this snapshot's G_ema samples; lower is better.
    metric = models.FloatField(null=True, blank=True, help_text="Value of the run's selection metric.")
    swd = models.FloatField(null=True, blank=True, help_text="Sliced Wasserstein distance (Laplacian pyramid).")
    kid = models.FloatField(null=True, blank=True, help_text="KID mean (FID-Inception features).")
    fid = models.FloatField(null=True, blank=True, help_text="FID from the trainer's few hundred images (biased).")
    is_best = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "step"]
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="checkpoint_unique_step")]

    def __str__(self) -> str:
        return f"{self.run} @ {self.kimg:.1f} kimg"

    @property
    def abs_path(self) -> Path:
        return Path(settings.MEDIA_ROOT) / self.path
