import secrets
import uuid
from pathlib import Path

from django.conf import settings
from django.db import models

from imagesets.models import Image, ImageSet


def new_token() -> str:
    """128 random bits, hex: the only name a rater ever sees for an image."""
    return secrets.token_hex(16)


class ResponseFormat(models.TextChoices):
    BINARY = "binary", "Real or generated"
    BINARY_CONFIDENCE = "binary_confidence", "Real or generated, with confidence 1-5"
    SIX_POINT = "six_point", "6-point scale from certainly real to certainly generated"


SIX_POINT_LABELS = [
    "certainly real",
    "probably real",
    "possibly real",
    "possibly generated",
    "probably generated",
    "certainly generated",
]


class StudyQuerySet(models.QuerySet):
    def for_rater(self, user) -> "StudyQuerySet":
        return self.filter(assignments__rater=user).exclude(status=Study.Status.DRAFT).distinct()


class Study(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "draft"
        OPENING = "opening", "opening"
        OPEN = "open", "open"
        CLOSED = "closed", "closed"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200, unique=True)
    instructions = models.TextField(blank=True, help_text="Markdown, shown to raters before they start.")
    real_imageset = models.ForeignKey(ImageSet, on_delete=models.PROTECT, related_name="+")
    real_split = models.CharField(max_length=5, default="test", help_text="Held-out split the real images come from.")
    n_real = models.PositiveIntegerField()
    n_fake = models.PositiveIntegerField()
    disclose_ratio = models.BooleanField(default=False, help_text="Tell raters how many images are generated.")
    response_format = models.CharField(max_length=20, choices=ResponseFormat.choices, default=ResponseFormat.BINARY)
    time_limit_s = models.PositiveIntegerField(null=True, blank=True, help_text="Seconds per image (blank: none).")
    n_training = models.PositiveIntegerField(
        default=0, help_text="Images in a training block with feedback, shown first (separate images; 0: none)."
    )
    allow_window_level = models.BooleanField(default=True)
    allow_zoom = models.BooleanField(default=True)
    equivalence_margin = models.FloatField(
        default=0.10, help_text="TOST margin around 50% accuracy (0.10 = ±10 points)."
    )
    seed = models.BigIntegerField(default=0, help_text="Seed for drawing images and each rater's order.")
    raters = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="assigned_studies")

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    # The full definition as it was when the study opened (sources, counts, settings, image manifest hash).
    frozen_definition = models.JSONField(default=dict, blank=True)
    parity_report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    objects = StudyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.name

    @property
    def is_editable(self) -> bool:
        return self.status == self.Status.DRAFT

    @property
    def folder(self) -> Path:
        return Path(settings.MEDIA_ROOT) / "turing" / str(self.uid)

    @property
    def n_test(self) -> int:
        return self.n_real + self.n_fake


class StudySource(models.Model):
    """A synthetic image set in a study, labelled by the generator that made it."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="sources")
    imageset = models.ForeignKey(ImageSet, on_delete=models.PROTECT, related_name="+")
    generator = models.CharField(max_length=100)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "imageset"], name="source_unique_set")]

    def __str__(self) -> str:
        return f"{self.generator} ({self.imageset})"


class StudyImage(models.Model):
    """One image of an open study, re-encoded into the study's transport form under a random token."""

    class Block(models.TextChoices):
        TEST = "test", "test"
        TRAINING = "training", "training"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="images")
    token = models.CharField(max_length=32, unique=True, default=new_token)
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="+")
    is_generated = models.BooleanField()
    generator = models.CharField(max_length=100, blank=True)
    block = models.CharField(max_length=10, choices=Block.choices, default=Block.TEST)
    # Transport file: raw little-endian pixels, the same byte length for every image of the study.
    blob = models.CharField(max_length=300)

    class Meta:
        indexes = [models.Index(fields=["study", "block"])]

    def __str__(self) -> str:
        return self.token

    @property
    def truth_label(self) -> str:
        return "generated" if self.is_generated else "real"

    @property
    def blob_path(self) -> Path:
        return Path(settings.MEDIA_ROOT) / self.blob


class AssignmentQuerySet(models.QuerySet):
    def for_rater(self, user) -> "AssignmentQuerySet":
        return self.filter(rater=user)


class Assignment(models.Model):
    """A rater in a study: their own seeded order and where they are in it."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="assignments")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    # Pseudonymous id used in exports instead of the username.
    pseudonym = models.CharField(max_length=20)
    seed = models.BigIntegerField()
    # StudyImage ids: training block first, then test trials, fixed at opening.
    order = models.JSONField(default=list)
    position = models.PositiveIntegerField(default=0, help_text="Index in `order` of the current trial.")
    current_shown_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = AssignmentQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "rater"], name="assignment_unique_rater")]

    def __str__(self) -> str:
        return f"{self.pseudonym} in {self.study}"

    @property
    def is_finished(self) -> bool:
        return self.finished_at is not None

    @property
    def n_done(self) -> int:
        return min(self.position, len(self.order))


class Rating(models.Model):
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="ratings")
    study_image = models.ForeignKey(StudyImage, on_delete=models.CASCADE, related_name="ratings")
    position = models.PositiveIntegerField(help_text="Trial position (0-based) in the rater's order.")
    is_training = models.BooleanField(default=False)
    # called_generated is None when the time limit ran out before an answer.
    called_generated = models.BooleanField(null=True)
    confidence = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1-5 (binary with confidence)")
    scale = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1-6 (six-point scale)")
    timed_out = models.BooleanField(default=False)
    # Both times are taken on the server.
    shown_at = models.DateTimeField()
    answered_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()

    class Meta:
        ordering = ["assignment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["assignment", "study_image"], name="rating_unique_image"),
            models.UniqueConstraint(fields=["assignment", "position"], name="rating_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.assignment} #{self.position}"

    @property
    def is_correct(self) -> bool | None:
        if self.called_generated is None:
            return None
        return self.called_generated == self.study_image.is_generated

    @property
    def score(self) -> float | None:
        """Ordinal score for ROC, higher = more confident the image is generated."""
        if self.scale is not None:
            return float(self.scale)
        if self.called_generated is None:
            return None
        if self.confidence is not None:
            return float(self.confidence if self.called_generated else -self.confidence)
        return 1.0 if self.called_generated else 0.0
