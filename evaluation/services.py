"""Writes for evaluations: validate, create (and enqueue), run, and the FID weights file."""

import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.jobs import JobProgress, environment, job_claim, json_safe
from evaluation.metrics import features as fid_features
from evaluation.metrics import get_metric
from evaluation.metrics.dice import dice_scores, hausdorff_distance_95
from evaluation.metrics.memorisation import memorisation_check
from evaluation.metrics.unet import predict, train_unet
from evaluation.models import INCEPTION_METRICS, METRIC_NAMES, Evaluation, FeatureCache
from imagesets.arrays import load_images
from imagesets.models import ImageSet

logger = logging.getLogger(__name__)
ProgressFn = Callable[[float, str], None]
# FID computed from fewer images than this is biased upwards (Chong & Forsyth 2020); KID is the better number.
FID_MIN_UNBIASED = 2048
DEFAULT_PARAMS = {
    "reference_split": "train",  # which real images distribution metrics compare against
    "dice_steps": 400,
    "dice_batch_size": 8,
    "dice_base_width": 16,
    "dice_lr": 1e-3,
    "dice_seeds": [0],
    "dice_val_fraction": 0.1,
    "kid_subsets": 100,
    "kid_subset_size": 1000,
    "prdc_k": 5,
    "swd_seed": 0,
    "memorisation_percentile": 1.0,
    "memorisation_ratio": 0.1,
}


INSTALL_HINT = (
    "Or run `python manage.py fid_weights install <downloaded file>`, which checks its SHA-256 and puts it in place."
)


class EvaluationError(ValueError):
    """Bad input: shown to the user before any work starts."""


# 1. The FID weights -------------------------------------------------------------------------------


def weights_status() -> dict:
    """Is the FID-Inception weights file installed and genuine? Never raises."""
    path = settings.FID_INCEPTION_WEIGHTS
    status = {"path": str(path), "installed": False, "sha256": None, "expected_sha256": fid_features.INCEPTION_SHA256}
    if path is None or not Path(path).is_file():
        status["message"] = fid_features.weights_install_instructions(path) + " " + INSTALL_HINT
        return status
    digest = fid_features.sha256_file(path)
    status["sha256"] = digest
    if digest != fid_features.INCEPTION_SHA256:
        status["message"] = (
            f"FID unavailable: {path} is not the official weights file (SHA-256 {digest}). "
            + fid_features.weights_install_instructions(path)
            + " "
            + INSTALL_HINT
        )
        return status
    status["installed"] = True
    status["message"] = f"FID-Inception weights installed at {path} (SHA-256 verified)."
    return status


def weights_install(*, source: Path) -> dict:
    """Check a downloaded weights file's SHA-256 and copy it to FID_INCEPTION_WEIGHTS."""
    if not source.is_file():
        raise EvaluationError(f"{source} is not a file.")
    digest = fid_features.sha256_file(source)
    if digest != fid_features.INCEPTION_SHA256:
        raise EvaluationError(
            f"{source} has SHA-256 {digest}, expected {fid_features.INCEPTION_SHA256}: "
            f"not {fid_features.INCEPTION_FILENAME} (a truncated download or another file)."
        )
    target = Path(settings.FID_INCEPTION_WEIGHTS)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    shutil.copyfile(source, tmp)
    tmp.replace(target)  # atomic: a half-copied file is never taken for the weights
    return weights_status()


def _feature_model():
    """The FID-Inception network, or WeightsUnavailable. Tests replace this with random weights."""
    return fid_features.load_fid_inception(settings.FID_INCEPTION_WEIGHTS)


# 2. Validation and creation ------------------------------------------------------------------------


def evaluation_check(*, reference: ImageSet, candidate: ImageSet | None, metrics: list[str], dice_arm: str) -> None:
    """One validator for every entry point: refuses bad input before any work starts."""
    problems = []
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown:
        problems.append(f"Unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRIC_NAMES)}.")
    if not metrics:
        problems.append("Choose at least one metric.")
    if reference.status != ImageSet.Status.READY:
        problems.append(f"The reference '{reference.name}' is not ready.")
    if reference.kind != ImageSet.Kind.REAL:
        problems.append(f"The reference '{reference.name}' must be a real image set.")
    if not reference.images.exists():
        problems.append(f"The reference '{reference.name}' is empty.")
    if candidate is not None:
        if candidate.status != ImageSet.Status.READY:
            problems.append(f"The candidate '{candidate.name}' is not ready.")
        if not candidate.images.exists():
            problems.append(f"The candidate '{candidate.name}' is empty.")
        if candidate.pk == reference.pk:
            problems.append("The candidate and the reference are the same set.")
        if (candidate.channels, candidate.height, candidate.width) != (
            reference.channels,
            reference.height,
            reference.width,
        ):
            problems.append(
                f"The sets differ: '{candidate.name}' is {candidate.width}x{candidate.height} with "
                f"{candidate.channels} channel(s), '{reference.name}' {reference.width}x{reference.height} "
                f"with {reference.channels}."
            )
    elif metrics != ["dice"] or dice_arm != Evaluation.DiceArm.REAL:
        problems.append("Only the real-data Dice baseline runs without a candidate set.")
    if "dice" in metrics:
        if not reference.has_masks:
            problems.append(f"The reference '{reference.name}' has no masks: Dice needs them.")
        if not reference.images.filter(split="test").exists():
            problems.append(f"The reference '{reference.name}' has no test split to test the U-Net on.")
        if candidate is not None and not candidate.has_masks:
            problems.append(f"The candidate '{candidate.name}' has no masks: Dice trains on image+mask pairs.")
        if candidate is not None and candidate.label_names != reference.label_names and candidate.has_masks:
            problems.append(
                f"The label names differ: {candidate.label_names} (candidate) vs {reference.label_names} (reference)."
            )
        if dice_arm != Evaluation.DiceArm.SYNTHETIC and not reference.images.filter(split="train").exists():
            problems.append(f"The reference '{reference.name}' has no train split for the real-data arm.")
    if problems:
        raise EvaluationError(" ".join(problems))


def _enqueue(evaluation: Evaluation) -> None:
    from evaluation.tasks import evaluation_run_default, evaluation_run_gpu

    # The U-Net trains on the gpu queue; the distribution metrics run on the default queue.
    task = evaluation_run_gpu if "dice" in evaluation.metrics else evaluation_run_default
    transaction.on_commit(lambda: task.enqueue(evaluation.pk))


@transaction.atomic
def evaluation_create(
    *,
    reference: ImageSet,
    candidates: list[ImageSet],
    metrics: list[str],
    params: dict | None = None,
    dice_arm: str = Evaluation.DiceArm.SYNTHETIC,
    include_baseline: bool = True,
    user=None,
    enqueue: bool = True,
) -> list[Evaluation]:
    """Evaluations of each candidate against the reference (one batch); with Dice, also the real baseline
    unless one with the same U-Net budget already exists."""
    params = {**DEFAULT_PARAMS, **(params or {})}
    unknown = set(params) - set(DEFAULT_PARAMS)
    if unknown:
        raise EvaluationError(f"Unknown parameter(s): {', '.join(sorted(unknown))}.")
    if not candidates:
        raise EvaluationError("Choose at least one candidate set.")
    for candidate in candidates:
        evaluation_check(reference=reference, candidate=candidate, metrics=metrics, dice_arm=dice_arm)
    owner = user if user is not None and user.is_authenticated else None
    created = []
    first = None
    for candidate in candidates:
        evaluation = Evaluation.objects.create(
            reference=reference,
            candidate=candidate,
            metrics=list(metrics),
            params=params,
            dice_arm=dice_arm,
            created_by=owner,
            **({"batch": first.batch} if first else {}),
        )
        first = first or evaluation
        created.append(evaluation)
    if "dice" in metrics and include_baseline:
        budget = {k: v for k, v in params.items() if k.startswith("dice_")}
        existing = [
            e
            for e in Evaluation.objects.filter(reference=reference, candidate__isnull=True).exclude(
                status=Evaluation.Status.FAILED
            )
            if {k: v for k, v in e.params.items() if k.startswith("dice_")} == budget
        ]
        if not existing:
            evaluation_check(reference=reference, candidate=None, metrics=["dice"], dice_arm=Evaluation.DiceArm.REAL)
            created.append(
                Evaluation.objects.create(
                    reference=reference,
                    candidate=None,
                    metrics=["dice"],
                    params=params,
                    dice_arm=Evaluation.DiceArm.REAL,
                    created_by=owner,
                    batch=first.batch,
                )
            )
    if enqueue:
        for evaluation in created:
            _enqueue(evaluation)
    return created


# 3. Running -----------------------------------------------------------------------------------------


def _claim(evaluation_id: int) -> Evaluation | None:
    claimed = job_claim(
        Evaluation,
        evaluation_id,
        queued=Evaluation.Status.QUEUED,
        running=Evaluation.Status.RUNNING,
        stale_after=Evaluation.STALE_AFTER,
        started_at=timezone.now(),
        progress=0.0,
        error="",
    )
    return Evaluation.objects.select_related("reference", "candidate").get(pk=evaluation_id) if claimed else None


def _reference_features(
    model, weights_sha: str, reference: ImageSet, split: str, images: np.ndarray, progress: ProgressFn
) -> tuple[np.ndarray, bool]:
    """Features of the reference split, cached by content hash and protocol. Returns (features, from_cache)."""
    protocol_key = hashlib.sha256(
        json.dumps({"weights": weights_sha, **fid_features.PROTOCOL}, sort_keys=True, default=str).encode()
    ).hexdigest()
    cached = FeatureCache.objects.filter(
        content_hash=reference.content_hash, split=split, protocol_key=protocol_key
    ).first()
    if cached is not None and reference.content_hash and Path(cached.path).is_file():
        return np.load(cached.path), True
    feats = fid_features.extract_features(
        model, images, progress_fn=lambda done, total: progress(0.1 + 0.2 * done / total, "features of the reference")
    )
    if reference.content_hash:
        folder = Path(settings.MEDIA_ROOT) / "feature-cache"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{reference.content_hash}-{split}-{protocol_key[:16]}.npy"
        np.save(path, feats)
        FeatureCache.objects.update_or_create(
            content_hash=reference.content_hash,
            split=split,
            protocol_key=protocol_key,
            defaults={"path": str(path), "n_images": len(feats)},
        )
    return feats, False


def _class_table(per_image: np.ndarray, label_names: list[str]) -> dict:
    """Per foreground class: mean, std and count of non-NaN values over test images."""
    table = {}
    for c, name in enumerate(label_names[1:]):
        column = per_image[:, c]
        valid = column[~np.isnan(column)]
        table[name] = {
            "mean": float(valid.mean()) if len(valid) else None,
            "std": float(valid.std(ddof=1)) if len(valid) > 1 else None,
            "n": int(len(valid)),
        }
    return table


def _dice(evaluation: Evaluation, progress: ProgressFn) -> dict:
    """Train a U-Net per seed on the arm's training data, select on validation, test on real held-out images."""
    p = evaluation.params
    reference, candidate = evaluation.reference, evaluation.candidate
    label_names = reference.label_names
    n_classes = len(label_names)
    test_x, test_y, _, test_spacing = load_images(reference.images.filter(split="test"))
    parts_x, parts_y = [], []
    val_x = val_y = None
    arm = evaluation.dice_arm
    if arm in (Evaluation.DiceArm.REAL, Evaluation.DiceArm.REAL_PLUS_SYNTHETIC):
        tx, ty, _, _ = load_images(reference.images.filter(split="train"))
        parts_x.append(tx)
        parts_y.append(ty)
        vx, vy, _, _ = load_images(reference.images.filter(split="val"))
        if len(vx):
            val_x, val_y = vx, vy
    if arm in (Evaluation.DiceArm.SYNTHETIC, Evaluation.DiceArm.REAL_PLUS_SYNTHETIC):
        cx, cy, _, _ = load_images(candidate.images.all())
        parts_x.append(cx)
        parts_y.append(cy)
    train_x, train_y = np.concatenate(parts_x), np.concatenate(parts_y)
    rng = np.random.default_rng(0)
    if val_x is None:
        # No real validation split to use: hold out a seeded fraction of the training data for model selection.
        order = rng.permutation(len(train_x))
        n_val = max(1, round(len(train_x) * p["dice_val_fraction"]))
        val_idx, train_idx = order[:n_val], order[n_val:]
        val_x, val_y = train_x[val_idx], train_y[val_idx]
        train_x, train_y = train_x[train_idx], train_y[train_idx]
    seeds = list(p["dice_seeds"]) or [0]
    runs = []
    for i, seed in enumerate(seeds):

        def report(step: int, total: int, info: dict, i: int = i, seed: int = seed) -> None:
            done = (i + step / total) / len(seeds)
            progress(done * 0.95, f"U-Net seed {seed}: step {step}/{total}, val Dice {info['val_dice']:.3f}")

        result = train_unet(
            train_x,
            train_y,
            val_x,
            val_y,
            n_classes=n_classes,
            steps=p["dice_steps"],
            batch_size=p["dice_batch_size"],
            lr=p["dice_lr"],
            base_width=p["dice_base_width"],
            seed=seed,
            progress_fn=report,
        )
        pred = predict(result.model, test_x)
        scores = dice_scores(pred, test_y, n_classes)
        hd = np.full((len(test_y), n_classes - 1), np.nan)
        if all(s is not None for s in test_spacing):
            for k in range(len(test_y)):
                for c in range(1, n_classes):
                    hd[k, c - 1] = hausdorff_distance_95(pred[k] == c, test_y[k] == c, test_spacing[k])
        runs.append(
            {
                "seed": seed,
                "foreground_mean": scores["foreground_mean"],
                "dice": _class_table(scores["per_image"], label_names),
                "hd95_mm": _class_table(hd, label_names) if not np.all(np.isnan(hd)) else None,
                "best_step": result.best_step,
                "best_val_dice": result.best_val_dice,
                "seconds": result.seconds,
            }
        )
    means = [
        r["foreground_mean"] for r in runs if r["foreground_mean"] is not None and math.isfinite(r["foreground_mean"])
    ]
    return {
        "arm": arm,
        "n_train": int(len(train_x)),
        "n_val": int(len(val_x)),
        "n_test": int(len(test_x)),
        "foreground_mean": float(np.mean(means)) if means else None,
        "foreground_std_over_seeds": float(np.std(means, ddof=1)) if len(means) > 1 else None,
        # Per-class table of the first seed (the paper reports one U-Net per arm); all seeds below.
        "dice": runs[0]["dice"],
        "hd95_mm": runs[0]["hd95_mm"],
        "runs": runs,
        "label_names": label_names,
    }


def evaluation_run(*, evaluation_id: int, echo: ProgressFn | None = None) -> Evaluation | None:
    """Run a queued evaluation; safe to call twice (only a queued or stale one is picked up).

    Steps: 1. load images; 2. Inception features when a metric needs them and the weights are installed
    (otherwise those metrics are recorded as unavailable with the install instructions and the others still
    run); 3. each metric, timed; 4. store results and the protocol record.
    """
    evaluation = _claim(evaluation_id)
    if evaluation is None:
        return None
    progress = JobProgress(Evaluation, evaluation.pk, echo)
    results: dict = {}
    unavailable: dict[str, str] = {}
    protocol: dict = {"versions": environment(), "params": evaluation.params, "seconds": {}}
    started = time.monotonic()
    try:
        p = evaluation.params
        reference, candidate = evaluation.reference, evaluation.candidate
        metrics = list(evaluation.metrics)
        ref_split = p["reference_split"]
        needs_images = candidate is not None and any(m != "dice" for m in metrics)
        if needs_images:
            progress(0.02, "loading images")
            ref_qs = reference.images.all() if ref_split == "all" else reference.images.filter(split=ref_split)
            ref_x, _, _, _ = load_images(ref_qs)
            cand_x, _, cand_ids, _ = load_images(candidate.images.all())
            if len(ref_x) == 0:
                raise EvaluationError(f"The reference has no images in split '{ref_split}'.")
            protocol["n_reference"] = int(len(ref_x))
            protocol["n_candidate"] = int(len(cand_x))
            protocol["reference_split"] = ref_split
        feats = None
        if needs_images and (INCEPTION_METRICS | {"memorisation"}) & set(metrics):
            try:
                model = _feature_model()
                weights_sha = getattr(model, "weights_sha256", None) or weights_status().get("sha256") or "random"
                t0 = time.monotonic()
                ref_f, cached = _reference_features(model, weights_sha, reference, ref_split, ref_x, progress)
                cand_f = fid_features.extract_features(
                    model,
                    cand_x,
                    progress_fn=lambda d, t: progress(0.3 + 0.2 * d / t, "features of the candidate"),
                )
                feats = (ref_f, cand_f)
                protocol["features"] = {
                    **fid_features.PROTOCOL,
                    "weights_sha256": weights_sha,
                    "reference_from_cache": cached,
                }
                protocol["seconds"]["features"] = round(time.monotonic() - t0, 3)
            except fid_features.WeightsUnavailable as exc:
                for m in INCEPTION_METRICS & set(metrics):
                    unavailable[m] = f"{exc} {INSTALL_HINT}"
        for i, metric in enumerate(metrics):
            t0 = time.monotonic()
            progress(0.5 + 0.5 * i / len(metrics), f"computing {metric}")
            if metric in INCEPTION_METRICS:
                if feats is None:
                    continue
                options = {
                    "kid": {"subsets": p["kid_subsets"], "subset_size": p["kid_subset_size"]},
                    "prdc": {"k": p["prdc_k"]},
                }.get(metric, {})
                results[metric] = get_metric(metric).fn(feats[0], feats[1], **options)
                if metric == "fid":
                    results[metric]["biased"] = min(len(ref_x), len(cand_x)) < FID_MIN_UNBIASED
            elif metric == "swd":
                results["swd"] = get_metric("swd").fn(ref_x, cand_x, seed=p["swd_seed"])
            elif metric == "memorisation":
                results["memorisation"] = _memorisation(evaluation, cand_x, cand_ids, feats)
            elif metric == "dice":
                results["dice"] = _dice(evaluation, progress)
            protocol["seconds"][metric] = round(time.monotonic() - t0, 3)
        if unavailable:
            results["unavailable"] = unavailable
        protocol["seconds"]["total"] = round(time.monotonic() - started, 3)
        Evaluation.objects.filter(pk=evaluation.pk).update(
            status=Evaluation.Status.DONE,
            results=json_safe(results),
            protocol=json_safe(protocol),
            progress=1.0,
            progress_message="done",
            finished_at=timezone.now(),
            heartbeat_at=timezone.now(),
        )
    except Exception as exc:
        if isinstance(exc, EvaluationError | ValueError):
            message = str(exc)
        else:
            logger.exception("evaluation %s failed", evaluation.pk)
            message = f"Unexpected error ({type(exc).__name__}): {exc}"
        Evaluation.objects.filter(pk=evaluation.pk).update(
            status=Evaluation.Status.FAILED, error=message, finished_at=timezone.now()
        )
    evaluation.refresh_from_db()
    return evaluation


def _memorisation(evaluation: Evaluation, cand_x: np.ndarray, cand_ids: list[int], feats) -> dict:
    """Nearest training image of each candidate image, by pixels and (when available) by features."""
    p = evaluation.params
    candidate, reference = evaluation.candidate, evaluation.reference
    provenance = candidate.provenance or {}
    training_set = reference
    splits = ["train"]
    if provenance.get("training_imageset_id"):
        training_set = ImageSet.objects.filter(pk=provenance["training_imageset_id"]).first() or reference
        splits = provenance.get("training_splits") or ["train"]
    train_qs = training_set.images.filter(split__in=splits)
    train_x, _, train_ids, _ = load_images(train_qs)
    if len(train_x) < 2:
        raise EvaluationError("The memorisation audit needs at least 2 training images.")
    out: dict = {"training_imageset": training_set.name, "training_splits": splits, "n_training": len(train_x)}
    pixel = memorisation_check(
        cand_x, train_x, percentile=p["memorisation_percentile"], ratio_threshold=p["memorisation_ratio"]
    )
    out["pixel"] = {k: v for k, v in pixel.summary().items() if k != "flagged_indices"}
    # The gallery: every flagged image plus the closest ones, each with its nearest training image.
    closest = np.argsort(pixel.ratio)[:12].tolist()
    show = sorted(set(np.flatnonzero(pixel.flagged).tolist()) | set(closest), key=lambda k: pixel.ratio[k])[:48]
    out["pairs"] = [
        {
            "candidate_image": cand_ids[k],
            "training_image": train_ids[int(pixel.nn_index[k])],
            "distance": float(pixel.nn_distance[k]),
            "ratio": float(pixel.ratio[k]),
            "flagged": bool(pixel.flagged[k]),
        }
        for k in show
    ]
    if feats is not None and training_set.pk == reference.pk and splits == [evaluation.params["reference_split"]]:
        feature = memorisation_check(
            feats[1], feats[0], percentile=p["memorisation_percentile"], ratio_threshold=p["memorisation_ratio"]
        )
        out["features"] = {k: v for k, v in feature.summary().items() if k != "flagged_indices"}
    return out
