"""Writes for GAN training runs and sampling. The networks and the loop live in synthesis/gans (no Django)."""

import importlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.jobs import environment, job_claim, json_safe
from imagesets.arrays import load_images
from imagesets.importers.base import DatasetHeader, ImportOptions, Sample
from imagesets.models import ImageSet
from imagesets.services import imageset_fill_run
from synthesis.gans.registry import GANS, get_gan
from synthesis.gans.trainer import TrainConfig, TrainData, load_checkpoint, sample, train
from synthesis.models import Checkpoint, TrainingRun

logger = logging.getLogger(__name__)
ProgressFn = Callable[[float, str], None]
MAX_SAMPLES = 50_000


class RunError(ValueError):
    """A bad configuration or request, refused with this message before anything is queued."""


# 1. Configuration ----------------------------------------------------------------------------------


def feature_metrics_unavailable() -> str | None:
    """Why KID/FID cannot be computed at snapshots here (no evaluation module, no FID weights), or None."""
    provider = _feature_metrics_provider()
    if provider is None:
        return "KID/FID during training needs the evaluation app (the SYNTHESIS_FEATURE_METRICS setting is empty)."
    return provider.unavailable()


def _feature_metrics_provider():
    path = getattr(settings, "SYNTHESIS_FEATURE_METRICS", "")
    return importlib.import_module(path) if path else None


def _snapshot_metrics(overrides: dict) -> dict:
    """``metric`` and ``feature_metrics`` for a launch: what the admin chose, else KID and FID (the best
    checkpoint chosen by KID) when the FID weights are installed, SWD alone otherwise. Choosing SWD (the
    CPU preset does) turns KID/FID off unless ``feature_metrics`` names them: Inception features of a few
    hundred images cost a CPU several times a small snapshot interval's training."""
    metric, names = overrides.get("metric"), overrides.get("feature_metrics")
    if isinstance(names, str):
        names = [m.strip() for m in names.split(",") if m.strip()]
    if names is None:
        wanted = metric in ("kid", "fid") or (metric is None and feature_metrics_unavailable() is None)
        # SWD chosen (or no weights): no Inception work at snapshots unless feature_metrics asks for it.
        names = ["kid", "fid"] if wanted else []
    if metric is None:
        metric = "kid" if "kid" in names else "fid" if "fid" in names else "swd"
    if names:
        reason = feature_metrics_unavailable()
        if reason is not None:
            raise RunError(
                f"{'/'.join(n.upper() for n in names)} at snapshots cannot be computed: {reason} "
                'Or choose SWD (options {"metric": "swd", "feature_metrics": []}).'
            )
    return {"metric": metric, "feature_metrics": names}


def _train_images(training_set: ImageSet, splits: list[str]):
    return training_set.images.filter(split__in=splits)


def run_config_resolve(*, training_set: ImageSet, arch: str, overrides: dict, splits: list[str]) -> TrainConfig:
    """The one validator for a run: refuses what cannot train, with a message, before anything is queued."""
    if training_set.status in (ImageSet.Status.QUEUED, ImageSet.Status.IMPORTING):
        raise RunError(f"'{training_set.name}' is still importing; launch the run when it is ready.")
    if training_set.status != ImageSet.Status.READY:
        raise RunError(f"'{training_set.name}' is not ready ({training_set.status}).")
    if arch not in GANS:
        raise RunError(f"Unknown architecture {arch!r}; choose one of {', '.join(sorted(GANS))}.")
    overrides = dict(overrides)
    resolution = int(overrides.pop("resolution", None) or training_set.height)
    if resolution < 32 or resolution > 256 or resolution & (resolution - 1):
        raise RunError(f"The resolution must be a power of two from 32 to 256, not {resolution}.")
    if resolution > training_set.height:
        raise RunError(
            f"The resolution {resolution} is larger than the set's {training_set.height}x{training_set.width} images."
        )
    n_train = _train_images(training_set, splits).count()
    if n_train == 0:
        raise RunError(f"'{training_set.name}' has no images in split(s) {', '.join(splits)}.")
    spec = get_gan(arch)
    if spec.conditional and not training_set.has_masks:
        raise RunError(f"{spec.title} generates an image for a given mask: '{training_set.name}' has no masks.")
    batch = int(overrides.get("batch_size", spec.preset.get("batch_size", 64)))
    if batch > n_train:
        raise RunError(f"The batch size {batch} is larger than the {n_train} training images; lower it.")
    n_classes = len(training_set.label_names) if training_set.has_masks else 0
    overrides.update(_snapshot_metrics(overrides))
    try:
        return TrainConfig.resolve(
            arch, {**overrides, "resolution": resolution, "img_channels": training_set.channels, "n_classes": n_classes}
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise RunError(f"Invalid configuration: {exc}") from None


@transaction.atomic
def training_run_launch(
    *,
    training_set: ImageSet,
    arch: str,
    overrides: dict | None = None,
    name: str = "",
    splits: list[str] | None = None,
    user=None,
    cloned_from: TrainingRun | None = None,
    enqueue: bool = True,
) -> TrainingRun:
    splits = splits or ["train"]
    overrides = dict(overrides or {})
    cfg = run_config_resolve(training_set=training_set, arch=arch, overrides=overrides, splits=splits)
    run = TrainingRun.objects.create(
        name=name.strip() or f"{get_gan(arch).title} on {training_set.name}",
        training_set=training_set,
        training_splits=splits,
        arch=arch,
        overrides=overrides,
        config=cfg.to_dict(),
        cloned_from=cloned_from,
        environment=environment(),
        created_by=user if user is not None and user.is_authenticated else None,
    )
    if enqueue:
        _enqueue_training(run.pk)
    return run


def _enqueue_training(run_id: int) -> None:
    from synthesis.tasks import training_run_task

    transaction.on_commit(lambda: training_run_task.enqueue(run_id))


def training_run_clone(*, run: TrainingRun, overrides: dict, name: str = "", user=None) -> TrainingRun:
    """A new run with the same data and architecture and the given changes to the original's overrides."""
    return training_run_launch(
        training_set=run.training_set,
        arch=run.arch,
        overrides={**run.overrides, **overrides},
        name=name or f"{run.name} (clone)",
        splits=run.training_splits,
        user=user,
        cloned_from=run,
    )


@transaction.atomic
def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.status == TrainingRun.Status.QUEUED:
        run.status = TrainingRun.Status.CANCELLED
        run.finished_at = timezone.now()
    elif run.status == TrainingRun.Status.RUNNING:
        # The loop polls this once per tick and stops after writing a checkpoint.
        run.cancel_requested = True
    else:
        raise RunError(f"The run is {run.status}; there is nothing to cancel.")
    run.save(update_fields=["status", "finished_at", "cancel_requested"])
    return run


@transaction.atomic
def training_run_resume(*, run: TrainingRun) -> TrainingRun:
    """Queue a cancelled, failed or interrupted run again; it continues from its latest checkpoint."""
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if not run.can_resume:
        raise RunError("Only a cancelled, failed or interrupted run with a checkpoint can be resumed.")
    run.status = TrainingRun.Status.QUEUED
    run.cancel_requested = False
    run.error = ""
    run.finished_at = None
    run.save(update_fields=["status", "cancel_requested", "error", "finished_at"])
    _enqueue_training(run.pk)
    return run


def runs_resume_interrupted() -> list[int]:
    """Re-queue every run whose worker died (stale heartbeat); run at worker start-up."""
    resumed = []
    for run in TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING):
        if run.is_interrupted:
            with transaction.atomic():
                TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.QUEUED, cancel_requested=False)
                _enqueue_training(run.pk)
            resumed.append(run.pk)
    return resumed


# 2. Training ----------------------------------------------------------------------------------------


def _claim(run_id: int) -> TrainingRun | None:
    claimed = job_claim(
        TrainingRun,
        run_id,
        queued=TrainingRun.Status.QUEUED,
        running=TrainingRun.Status.RUNNING,
        stale_after=TrainingRun.STALE_AFTER,
        started_at=timezone.now(),
    )
    return TrainingRun.objects.select_related("training_set").get(pk=run_id) if claimed else None


def training_data(run: TrainingRun, cfg: TrainConfig) -> TrainData:
    x, masks, _, _ = load_images(_train_images(run.training_set, run.training_splits))
    images = torch.from_numpy(x)  # (N, C, H, W) in [0, 1]
    mask_t = torch.from_numpy(masks.astype(np.int64)) if (masks is not None and cfg.n_classes) else None
    if images.shape[-1] != cfg.resolution:
        # Train below the set's size: area-average the images, nearest-neighbour the masks.
        images = F.interpolate(images, size=(cfg.resolution, cfg.resolution), mode="area")
        if mask_t is not None:
            mask_t = F.interpolate(mask_t[:, None].float(), size=(cfg.resolution,) * 2, mode="nearest")[:, 0].long()
    return TrainData(images=images * 2 - 1, masks=mask_t, n_classes=cfg.n_classes if mask_t is not None else 0)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _sync_checkpoints(run: TrainingRun) -> None:
    """Mirror the run folder's checkpoint files (and their snapshot metrics) into Checkpoint rows."""
    ckpt_dir = run.run_dir / "checkpoints"
    if not ckpt_dir.is_dir():
        return
    records = {}
    metrics = run.run_dir / "metrics.jsonl"
    if metrics.exists():
        for line in metrics.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                records[record["checkpoint"]] = record
    # A snapshot whose metric is NaN (diverged samples, failed KID/FID) is never the best; shown as missing.
    finite = [r for r in records.values() if _finite(r.get("value")) is not None]
    best = min(finite, key=lambda r: r["value"]) if finite else None
    per_step = run.config.get("batch_size", 1) * run.config.get("n_critic", 1) / 1000
    media = Path(settings.MEDIA_ROOT)
    wanted: dict[int, Checkpoint] = {}

    def checkpoint(step: int, path: Path, record: dict, kimg: float, is_best: bool) -> Checkpoint:
        return Checkpoint(
            run=run,
            step=step,
            kimg=record.get("kimg", kimg),
            path=str(path.relative_to(media)),
            metric=_finite(record.get("value")),
            swd=_finite(record.get("swd", record.get("value"))),  # runs before KID/FID recorded only "value"
            kid=_finite(record.get("kid")),
            fid=_finite(record.get("fid")),
            is_best=is_best,
        )

    for path in sorted(ckpt_dir.glob("ckpt-*.pt")):
        step = int(path.stem.split("-")[1])
        record = records.get(path.name) or {}
        wanted[step] = checkpoint(step, path, record, step * per_step, best is not None and record is best)
    if best is not None and best["step"] not in wanted and (ckpt_dir / "best.pt").exists():
        # The best snapshot's own file was pruned; best.pt still holds it.
        wanted[best["step"]] = checkpoint(best["step"], ckpt_dir / "best.pt", best, best["kimg"], True)
    with transaction.atomic():
        Checkpoint.objects.filter(run=run).delete()
        Checkpoint.objects.bulk_create(list(wanted.values()))
        TrainingRun.objects.filter(pk=run.pk).update(best_metric=best["value"] if best else None)


def training_run_execute(*, run_id: int, log: Callable[[str], None] | None = None) -> TrainingRun | None:
    """Run (or continue) a queued or interrupted run. Safe to call twice: a run another worker holds is
    left alone. Resumes exactly from the latest checkpoint when there is one."""
    run = _claim(run_id)
    if run is None:
        return None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    device_name = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    TrainingRun.objects.filter(pk=run.pk).update(device=device_name, error="")
    attempt_started = time.monotonic()
    base_seconds = run.seconds_running
    last_sync = [0.0]

    def progress_fn(cur_kimg: float, total_kimg: float, stats: dict) -> None:
        TrainingRun.objects.filter(pk=run.pk).update(
            kimg_done=cur_kimg,
            step=int(stats.get("step", 0)),
            last_stats=json_safe(stats),
            heartbeat_at=timezone.now(),
            seconds_running=base_seconds + time.monotonic() - attempt_started,
        )
        if time.monotonic() - last_sync[0] > 2:
            last_sync[0] = time.monotonic()
            _sync_checkpoints(run)

    def abort_fn() -> bool:
        return TrainingRun.objects.filter(pk=run.pk, cancel_requested=True).exists()

    try:
        cfg = TrainConfig.from_dict(run.config)
        data = training_data(run, cfg)
        latest = run.run_dir / "checkpoints" / "latest.pt"
        feature_metrics = None
        if cfg.feature_metrics:
            reason = feature_metrics_unavailable()
            if reason is not None:
                raise RunError(f"This run computes {'/'.join(cfg.feature_metrics).upper()} at snapshots: {reason}")
            feature_metrics = _feature_metrics_provider().build(cfg.feature_metrics, device)
        result = train(
            cfg,
            data,
            run.run_dir,
            resume_from=latest if latest.exists() else None,
            progress_fn=progress_fn,
            abort_fn=abort_fn,
            log_fn=log,
            device=device,
            feature_metrics=feature_metrics,
        )
        _sync_checkpoints(run)
        status = TrainingRun.Status.CANCELLED if result.aborted else TrainingRun.Status.DONE
        TrainingRun.objects.filter(pk=run.pk).update(
            status=status,
            kimg_done=result.kimg,
            step=result.step,
            last_stats=json_safe(result.stats),
            finished_at=timezone.now(),
            heartbeat_at=timezone.now(),
            cancel_requested=False,
            seconds_running=base_seconds + time.monotonic() - attempt_started,
        )
    except Exception as exc:
        logger.exception("training run %s failed", run.pk)
        _sync_checkpoints(run)
        TrainingRun.objects.filter(pk=run.pk).update(
            status=TrainingRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now()
        )
    run.refresh_from_db()
    return run


def run_stats(run: TrainingRun, *, last: int | None = None) -> list[dict]:
    path = run.run_dir / "stats.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines[-last:] if last else lines


def run_grids(run: TrainingRun) -> list[Path]:
    folder = run.run_dir / "grids"
    return sorted(folder.glob("grid-*.png"), reverse=True) if folder.is_dir() else []


# 3. Sampling ----------------------------------------------------------------------------------------


@transaction.atomic
def sample_launch(
    *,
    run: TrainingRun,
    checkpoint: Checkpoint,
    count: int,
    name: str,
    seed_start: int = 0,
    psi: float = 1.0,
    user=None,
    enqueue: bool = True,
) -> ImageSet:
    """A new synthetic image set of `count` samples from a checkpoint, with seeds seed_start.. (regenerable)."""
    if checkpoint.run_id != run.pk:
        raise RunError("That checkpoint belongs to another run.")
    if not checkpoint.abs_path.exists():
        raise RunError("The checkpoint file is missing (pruned or deleted).")
    if not 1 <= count <= MAX_SAMPLES:
        raise RunError(f"Sample between 1 and {MAX_SAMPLES} images.")
    if not 0 < psi <= 1:
        raise RunError("Truncation psi must be in (0, 1].")
    if psi != 1.0 and run.arch != "stylegan":
        raise RunError("Truncation needs a style-based generator (stylegan).")
    if not name.strip():
        raise RunError("Give the new image set a name.")
    if ImageSet.objects.filter(name=name.strip()).exists():
        raise RunError(f"An image set named '{name.strip()}' already exists.")
    training_set = run.training_set
    imageset = ImageSet.objects.create(
        name=name.strip(),
        kind=ImageSet.Kind.SYNTHETIC,
        modality=training_set.modality,
        source_format="gan",
        source_path=checkpoint.path,
        import_options={"size": run.config["resolution"]},
        description=f"{count} samples of run '{run.name}' at {checkpoint.kimg:.1f} kimg.",
        provenance={
            "run_id": run.pk,
            "run": run.name,
            "architecture": run.arch,
            "checkpoint": checkpoint.path,
            "checkpoint_step": checkpoint.step,
            "checkpoint_kimg": round(checkpoint.kimg, 3),
            "checkpoint_metric": checkpoint.metric,
            "checkpoint_metric_name": run.selection_metric,
            "training_imageset_id": training_set.pk,
            "training_imageset": training_set.name,
            "training_splits": run.training_splits,
            "seeds": [seed_start, seed_start + count - 1],
            "psi": psi,
            "code": run.environment.get("code"),
        },
        created_by=user if user is not None and user.is_authenticated else None,
    )
    if enqueue:
        from synthesis.tasks import sample_task

        transaction.on_commit(lambda: sample_task.enqueue(imageset.pk))
    return imageset


def sample_execute(*, imageset_id: int, echo: ProgressFn | None = None) -> ImageSet | None:
    """Generate a queued synthetic set through the same writer as imported sets."""

    def produce(imageset: ImageSet, progress: ProgressFn):
        p = imageset.provenance
        run = TrainingRun.objects.select_related("training_set").get(pk=p["run_id"])
        G, cfg = load_checkpoint(Path(settings.MEDIA_ROOT) / p["checkpoint"])
        first, last = p["seeds"]
        seeds = list(range(first, last + 1))
        training_set = run.training_set
        cond_ids: list[int | None] = [None] * len(seeds)
        cond_masks = None
        if cfg.conditional:
            # SPADE draws each image for a real training mask: seeded choice, recorded per image.
            _, masks, ids, _ = load_images(_train_images(training_set, run.training_splits))
            rng = np.random.default_rng(first)
            pick = rng.integers(0, len(ids), size=len(seeds))
            cond_ids = [ids[i] for i in pick]
            cond_masks = torch.from_numpy(masks[pick].astype(np.int64))
            if cond_masks.shape[-1] != cfg.resolution:
                cond_masks = F.interpolate(cond_masks[:, None].float(), size=(cfg.resolution,) * 2, mode="nearest")[
                    :, 0
                ].long()
        label_names = training_set.label_names if cfg.n_classes else []
        header = DatasetHeader(
            modality=training_set.modality,
            channels=cfg.img_channels,
            label_names=label_names,
            square="pad",
            preprocessing={"generated_by": p["architecture"], "intensity": "G output [-1, 1] mapped to [0, 1]"},
        )

        def samples() -> Iterator[Sample]:
            batch = 32
            for start in range(0, len(seeds), batch):
                chunk = seeds[start : start + batch]
                cond = cond_masks[start : start + batch] if cond_masks is not None else None
                images, masks = sample(G, seeds=chunk, psi=p.get("psi", 1.0), cond=cond)
                progress(start / len(seeds), f"generated {start + len(chunk)}/{len(seeds)}")
                for k, seed in enumerate(chunk):
                    x = ((images[k] + 1) / 2).clamp(0, 1).numpy()  # (C, H, W)
                    image = x[0] if x.shape[0] == 1 else x.transpose(1, 2, 0)
                    yield Sample(
                        subject=f"seed-{seed}",
                        split="train",
                        image=image.astype(np.float32),
                        mask=masks[k].numpy() if masks is not None else None,
                        slice_index=0,
                        metadata={
                            "seed": seed,
                            "checkpoint": p["checkpoint"],
                            "kimg": p["checkpoint_kimg"],
                            "psi": p.get("psi", 1.0),
                            "cond_image_id": cond_ids[start + k],
                        },
                    )

        return header, samples(), ImportOptions(size=cfg.resolution)

    return imageset_fill_run(imageset_id=imageset_id, produce=produce, echo=echo)
