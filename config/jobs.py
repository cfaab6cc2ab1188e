"""Plumbing shared by every long job (imports, training, sampling, evaluations).

A job keeps its state on its own domain row (status, progress, heartbeat): `job_claim` takes a queued row
(or one whose worker died) atomically, so running a job twice does nothing, and `JobProgress` writes
progress at most once a second, which doubles as the heartbeat.
"""

import math
import platform
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import models
from django.utils import timezone

ProgressFn = Callable[[float, str], None]


def job_claim(
    model: type[models.Model], pk: int, *, queued: str, running: str, stale_after: timedelta, **on_claim
) -> bool:
    """Move row `pk` from `queued` to `running` (or take over a `running` row with a stale heartbeat).

    One conditional UPDATE each: only one worker can win. `on_claim` are extra fields set on a fresh claim.
    """
    now = timezone.now()
    if model.objects.filter(pk=pk, status=queued).update(status=running, heartbeat_at=now, **on_claim):
        return True
    return bool(
        model.objects.filter(pk=pk, status=running, heartbeat_at__lt=now - stale_after).update(heartbeat_at=now)
    )


class JobProgress:
    """Throttled progress writes on a row with `progress`, `progress_message` and `heartbeat_at`."""

    def __init__(self, model: type[models.Model], pk: int, echo: ProgressFn | None = None, interval: float = 1.0):
        self.model, self.pk, self.echo, self.interval, self.last = model, pk, echo, interval, 0.0

    def __call__(self, fraction: float, message: str) -> None:
        if self.echo is not None:
            self.echo(fraction, message)
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        self.model.objects.filter(pk=self.pk).update(
            progress=min(max(fraction, 0.0), 1.0), progress_message=message[:300], heartbeat_at=timezone.now()
        )


def json_safe(value):
    """Plain JSON for a JSONField: NaN and infinities become None, NumPy scalars Python numbers."""
    if isinstance(value, np.floating | np.integer):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def environment() -> dict:
    """What produced a result: code version and library versions (recorded with every run and score)."""
    import scipy
    import torch

    try:
        code = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        code = ""
    return {
        "code": code or "unknown",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }
