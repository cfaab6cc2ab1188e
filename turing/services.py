"""Writes for Turing studies: define, check parity, open (freeze and re-encode), rate, close."""

import hashlib
import random
import shutil
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import RATERS_GROUP
from imagesets.canonical import decode_image_png
from imagesets.models import Image, ImageSet
from turing.models import Assignment, Rating, ResponseFormat, Study, StudyImage, StudySource
from turing.ordering import rater_order

User = get_user_model()
# Allowance for network latency before an answer counts as late.
TIME_LIMIT_GRACE = timedelta(seconds=2)


class StudyError(ValueError):
    """The request cannot be carried out; the message is shown to the admin or rater as is."""


class TrialMismatch(StudyError):
    """An answer for an image that is not the rater's current one."""


@dataclass(frozen=True)
class SourceSpec:
    imageset: ImageSet
    generator: str


# 1. Definition -----------------------------------------------------------------------------------


def _trained_on(real_imageset: ImageSet, split: str) -> list[str]:
    """Synthetic sets whose generator was trained on this real set's split (from their provenance)."""
    offenders = []
    for synthetic in ImageSet.objects.synthetic().exclude(provenance={}):
        provenance = synthetic.provenance or {}
        if provenance.get("training_imageset_id") != real_imageset.pk:
            continue
        splits = provenance.get("training_splits") or ["train", "val", "test"]
        if split in splits:
            offenders.append(synthetic.name)
    return offenders


def study_definition_check(
    *,
    real_imageset: ImageSet,
    real_split: str,
    sources: list[SourceSpec],
    n_real: int,
    n_fake: int,
    n_training: int,
    raters: list,
) -> None:
    """One validator for a study definition, used by the form, the API, the command and opening."""
    problems = []
    if real_imageset.status != ImageSet.Status.READY or real_imageset.kind != ImageSet.Kind.REAL:
        problems.append(f"'{real_imageset.name}' is not a ready real image set.")
    if not sources:
        problems.append("Choose at least one synthetic image set.")
    generators = [s.generator.strip() for s in sources]
    if any(not g for g in generators):
        problems.append("Every synthetic set needs a generator label.")
    if len({s.imageset.pk for s in sources}) != len(sources):
        problems.append("A synthetic set is listed twice.")
    for spec in sources:
        if spec.imageset.status != ImageSet.Status.READY:
            problems.append(f"'{spec.imageset.name}' is not ready.")
        if spec.imageset.kind != ImageSet.Kind.SYNTHETIC:
            problems.append(f"'{spec.imageset.name}' is a real set; generated images must come from synthetic sets.")
        if spec.imageset.pk == real_imageset.pk:
            problems.append("The real set cannot also be a synthetic source.")
    if n_real < 1 or n_fake < 1:
        problems.append("A study needs at least one real and one generated image.")
    offenders = _trained_on(real_imageset, real_split)
    if offenders:
        problems.append(
            f"The {real_split} split of '{real_imageset.name}' was used to train {', '.join(offenders)}: "
            "real images must be held out. Use another split or set."
        )
    n_real_available = real_imageset.images.filter(split=real_split).count()
    n_real_needed = n_real + n_training // 2
    if n_real_available < n_real_needed:
        problems.append(
            f"The {real_split} split of '{real_imageset.name}' has {n_real_available} images; "
            f"the study needs {n_real_needed} real images (test plus training block)."
        )
    n_fake_available = sum(s.imageset.images.count() for s in sources)
    n_fake_needed = n_fake + (n_training - n_training // 2)
    if sources and n_fake_available < n_fake_needed:
        problems.append(f"The synthetic sets hold {n_fake_available} images; the study needs {n_fake_needed}.")
    for rater in raters:
        if not rater.groups.filter(name=RATERS_GROUP).exists():
            problems.append(f"{rater.username} is not in the raters group.")
    if problems:
        raise StudyError(" ".join(problems))


STUDY_FIELDS = (
    "instructions",
    "real_split",
    "n_real",
    "n_fake",
    "disclose_ratio",
    "response_format",
    "time_limit_s",
    "n_training",
    "allow_window_level",
    "allow_zoom",
    "equivalence_margin",
    "seed",
)


@transaction.atomic
def study_save(
    *,
    study: Study | None = None,
    name: str,
    real_imageset: ImageSet,
    sources: list[SourceSpec],
    raters: list,
    user=None,
    **fields,
) -> Study:
    """Create a draft study, or update one that is still a draft."""
    unknown = set(fields) - set(STUDY_FIELDS)
    if unknown:
        raise TypeError(f"unknown study fields: {sorted(unknown)}")
    if study is not None and not study.is_editable:
        raise StudyError("Only a draft study can be edited; its definition is frozen once it opens.")
    if Study.objects.filter(name=name).exclude(pk=getattr(study, "pk", None)).exists():
        raise StudyError(f"A study named '{name}' already exists.")
    if fields.get("response_format", ResponseFormat.BINARY) not in ResponseFormat.values:
        raise StudyError(f"Unknown response format {fields['response_format']!r}.")
    if not 0 < fields.get("equivalence_margin", 0.1) < 0.5:
        raise StudyError("The equivalence margin must be between 0 and 0.5 (e.g. 0.10 for ±10 points).")
    study_definition_check(
        real_imageset=real_imageset,
        real_split=fields.get("real_split", "test"),
        sources=sources,
        n_real=fields.get("n_real", 0),
        n_fake=fields.get("n_fake", 0),
        n_training=fields.get("n_training", 0),
        raters=raters,
    )
    if study is None:
        study = Study(created_by=user if user is not None and user.is_authenticated else None)
    study.name = name
    study.real_imageset = real_imageset
    for key, value in fields.items():
        setattr(study, key, value)
    study.save()
    study.sources.all().delete()
    StudySource.objects.bulk_create(
        [StudySource(study=study, imageset=s.imageset, generator=s.generator.strip()) for s in sources]
    )
    study.raters.set(raters)
    return study


# 2. Parity ---------------------------------------------------------------------------------------


def _describe(image: Image) -> dict:
    """What a rater's screen could reveal about an image apart from its content."""
    from PIL import Image as PILImage

    with PILImage.open(image.path) as pil:
        mode, size, fmt, info_keys = pil.mode, pil.size, pil.format, sorted(pil.info.keys())
    pixels = decode_image_png(str(image.path))
    return {
        "format": fmt,
        "mode": mode,
        "width": size[0],
        "height": size[1],
        "channels": 1 if pixels.ndim == 2 else pixels.shape[2],
        "min": float(pixels.min()),
        "max": float(pixels.max()),
        "metadata_chunks": [k for k in info_keys if k not in ("dpi", "gamma")],
    }


def study_parity_check(*, images: list[tuple[Image, str]]) -> dict:
    """Compare every image's size, channels, bit depth, encoding and value range across classes.

    `images` pairs each image with its class label ("real" or a generator). Returns a report with
    `ok` and human-readable `problems`; a study may open only when `ok` is true.
    """
    groups: dict[str, dict] = {}
    problems: list[str] = []
    for image, label in images:
        facts = _describe(image)
        group = groups.setdefault(
            label,
            {
                "n": 0,
                "formats": set(),
                "modes": set(),
                "sizes": set(),
                "channels": set(),
                "min": 1.0,
                "max": 0.0,
                "metadata": set(),
            },
        )
        group["n"] += 1
        group["formats"].add(facts["format"])
        group["modes"].add(facts["mode"])
        group["sizes"].add(f"{facts['width']}x{facts['height']}")
        group["channels"].add(facts["channels"])
        group["min"] = min(group["min"], facts["min"])
        group["max"] = max(group["max"], facts["max"])
        group["metadata"].update(facts["metadata_chunks"])
    for key, what in (
        ("formats", "encoding"),
        ("modes", "bit depth / pixel mode"),
        ("sizes", "size"),
        ("channels", "channel count"),
    ):
        values = set().union(*(g[key] for g in groups.values())) if groups else set()
        if len(values) > 1:
            detail = "; ".join(f"{label}: {', '.join(map(str, sorted(g[key])))}" for label, g in groups.items())
            problems.append(f"Images differ in {what} ({detail}).")
    for label, group in groups.items():
        if group["min"] < 0 or group["max"] > 1:
            problems.append(f"{label}: values outside [0, 1].")
        if group["metadata"]:
            problems.append(f"{label}: files carry metadata ({', '.join(sorted(group['metadata']))}); it is stripped.")
    # Metadata is stripped by re-encoding, so it alone does not block opening.
    blocking = [p for p in problems if "is stripped" not in p]
    report = {
        "ok": not blocking,
        "problems": problems,
        "groups": {
            label: {
                "n": g["n"],
                "formats": sorted(g["formats"]),
                "modes": sorted(g["modes"]),
                "sizes": sorted(g["sizes"]),
                "channels": sorted(g["channels"]),
                "min": round(g["min"], 6),
                "max": round(g["max"], 6),
            }
            for label, g in groups.items()
        },
        "checked_at": timezone.now().isoformat(),
    }
    return report


# 3. Opening --------------------------------------------------------------------------------------


def transport_bytes(image: Image) -> bytes:
    """The one re-encoding pipeline: decode the canonical PNG, emit raw little-endian pixels.

    16-bit grayscale -> uint16 LE (2 bytes/pixel); RGB -> uint8 interleaved (3 bytes/pixel). No header,
    no metadata, no compression: every image of a study has exactly the same byte length.
    """
    pixels = decode_image_png(str(image.path))
    if pixels.ndim == 2:
        return np.round(pixels * 65535.0).astype("<u2").tobytes()
    return np.round(pixels * 255.0).astype(np.uint8).tobytes()


def _draw(study: Study) -> tuple[list[tuple[Image, bool, str, str]], list[tuple[Image, str]]]:
    """Seeded draw of test and training images: (image, is_generated, generator, block)."""
    rng = random.Random(f"study-draw-{study.seed}")
    n_train_real = study.n_training // 2
    n_train_fake = study.n_training - n_train_real
    real_pool = list(study.real_imageset.images.filter(split=study.real_split).order_by("index"))
    rng.shuffle(real_pool)
    chosen: list[tuple[Image, bool, str, str]] = []
    chosen += [(img, False, "", StudyImage.Block.TEST) for img in real_pool[: study.n_real]]
    chosen += [(img, False, "", StudyImage.Block.TRAINING) for img in real_pool[study.n_real :][:n_train_real]]
    sources = list(study.sources.select_related("imageset").order_by("pk"))
    # Generated test images are split evenly across generators (the first ones get the remainder).
    per_source = [
        study.n_fake // len(sources) + (1 if i < study.n_fake % len(sources) else 0) for i in range(len(sources))
    ]
    fake_pools = []
    for source in sources:
        pool = list(source.imageset.images.order_by("index"))
        rng.shuffle(pool)
        fake_pools.append(pool)
    for source, pool, n in zip(sources, fake_pools, per_source, strict=True):
        if len(pool) < n:
            raise StudyError(f"'{source.imageset.name}' has {len(pool)} images; {n} are needed from it.")
        chosen += [(img, True, source.generator, StudyImage.Block.TEST) for img in pool[:n]]
        del pool[:n]
    leftovers = [(img, s.generator) for s, pool in zip(sources, fake_pools, strict=True) for img in pool]
    rng.shuffle(leftovers)
    if len(leftovers) < n_train_fake:
        raise StudyError("Not enough generated images are left for the training block.")
    chosen += [(img, True, gen, StudyImage.Block.TRAINING) for img, gen in leftovers[:n_train_fake]]
    labelled = [(img, gen if fake else "real") for img, fake, gen, _ in chosen]
    return chosen, labelled


def study_open(*, study: Study) -> Study:
    """Check parity, re-encode every image once under a random token, give each rater an order, freeze.

    Files are written first, rows in one transaction; on any failure the files are removed and the
    study stays a draft with the reason.
    """
    study = Study.objects.get(pk=study.pk)
    if study.status != Study.Status.DRAFT:
        raise StudyError(f"The study is {study.status}; only a draft can be opened.")
    raters = list(study.raters.all())
    if not raters:
        raise StudyError("Assign at least one rater before opening the study.")
    sources = [SourceSpec(s.imageset, s.generator) for s in study.sources.select_related("imageset")]
    study_definition_check(
        real_imageset=study.real_imageset,
        real_split=study.real_split,
        sources=sources,
        n_real=study.n_real,
        n_fake=study.n_fake,
        n_training=study.n_training,
        raters=raters,
    )
    chosen, labelled = _draw(study)
    report = study_parity_check(images=labelled)
    study.parity_report = report
    # Kept even when opening fails below, so the admin sees why.
    Study.objects.filter(pk=study.pk).update(parity_report=report)
    if not report["ok"]:
        raise StudyError("The images are not alike apart from their content: " + " ".join(report["problems"]))
    folder = study.folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        rows = []
        for image, is_generated, generator, block in chosen:
            row = StudyImage(study=study, image=image, is_generated=is_generated, generator=generator, block=block)
            path = folder / f"{row.token}.bin"
            path.write_bytes(transport_bytes(image))
            row.blob = str(path.relative_to(folder.parent.parent))
            rows.append(row)
        sizes = {r.blob_path.stat().st_size for r in rows}
        if len(sizes) != 1:
            raise StudyError(f"Transport files differ in size ({sorted(sizes)}); refusing to open.")
        with transaction.atomic():
            StudyImage.objects.bulk_create(rows)
            training = [r.pk for r in rows if r.block == StudyImage.Block.TRAINING]
            test = [(r.pk, r.is_generated) for r in rows if r.block == StudyImage.Block.TEST]
            for i, rater in enumerate(sorted(raters, key=lambda u: u.pk)):
                seed = int.from_bytes(hashlib.sha256(f"{study.seed}:{study.uid}:{rater.pk}".encode()).digest()[:6])
                Assignment.objects.create(
                    study=study,
                    rater=rater,
                    pseudonym=f"R{i + 1:02d}",
                    seed=seed,
                    order=rater_order(training_ids=training, test_items=test, seed=seed),
                )
            manifest = sorted(f"{r.token}:{r.image.checksum}:{int(r.is_generated)}:{r.block}" for r in rows)
            study.frozen_definition = {
                "name": study.name,
                "instructions": study.instructions,
                "real": {
                    "imageset_id": study.real_imageset_id,
                    "imageset": study.real_imageset.name,
                    "content_hash": study.real_imageset.content_hash,
                    "split": study.real_split,
                },
                "sources": [
                    {
                        "imageset_id": s.imageset.pk,
                        "imageset": s.imageset.name,
                        "generator": s.generator,
                        "content_hash": s.imageset.content_hash,
                    }
                    for s in sources
                ],
                **{f: getattr(study, f) for f in STUDY_FIELDS if f not in ("instructions", "real_split")},
                "raters": [
                    {"username": r.username, "pseudonym": f"R{i + 1:02d}"}
                    for i, r in enumerate(sorted(raters, key=lambda u: u.pk))
                ],
                "transport": {
                    "encoding": "raw little-endian",
                    "bytes": sizes.pop(),
                    "width": study.real_imageset.width,
                    "height": study.real_imageset.height,
                    "channels": study.real_imageset.channels,
                },
                "manifest_sha256": hashlib.sha256("\n".join(manifest).encode()).hexdigest(),
            }
            study.status = Study.Status.OPEN
            study.opened_at = timezone.now()
            study.error = ""
            study.save()
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return study


@transaction.atomic
def study_close(*, study: Study) -> Study:
    if study.status != Study.Status.OPEN:
        raise StudyError("Only an open study can be closed.")
    study.status = Study.Status.CLOSED
    study.closed_at = timezone.now()
    study.save(update_fields=["status", "closed_at"])
    return study


@transaction.atomic
def study_delete(*, study: Study) -> None:
    if study.status != Study.Status.DRAFT:
        raise StudyError("Only a draft study can be deleted; close an open study instead.")
    study.delete()


# 4. Rating ---------------------------------------------------------------------------------------


def _trial_state(assignment: Assignment, *, mark_shown: bool) -> dict:
    """What the viewer needs for the current trial. Carries nothing that depends on the image's class."""
    study = assignment.study
    total = len(assignment.order)
    # Opening draws exactly n_training training images (or refuses to open), so no query is needed.
    n_training = study.n_training
    state = {
        "done": assignment.position >= total,
        "answered": min(assignment.position, total),
        "total": total,
        "training_total": n_training,
        "closed": study.status != Study.Status.OPEN,
    }
    if state["done"] or state["closed"]:
        return state
    current = StudyImage.objects.get(pk=assignment.order[assignment.position])
    if mark_shown and assignment.current_shown_at is None:
        assignment.current_shown_at = timezone.now()
        if assignment.started_at is None:
            assignment.started_at = assignment.current_shown_at
        assignment.save(update_fields=["current_shown_at", "started_at"])
    state.update(
        {
            "token": current.token,
            "training": assignment.position < n_training,
            "time_limit_s": study.time_limit_s,
        }
    )
    return state


def trial_current(*, assignment: Assignment) -> dict:
    """The rater's current trial; the first time it is served, its shown-at time is taken."""
    with transaction.atomic():
        assignment = Assignment.objects.select_for_update().select_related("study").get(pk=assignment.pk)
        return _trial_state(assignment, mark_shown=True)


def trial_pause(*, assignment: Assignment) -> None:
    """A visible pause: the clock of the current trial restarts when it is shown again."""
    Assignment.objects.filter(pk=assignment.pk).update(current_shown_at=None)


def _parse_response(study: Study, *, call: str | None, confidence, scale) -> tuple[bool, int | None, int | None]:
    fmt = study.response_format
    if fmt == ResponseFormat.SIX_POINT:
        try:
            level = int(scale)
        except (TypeError, ValueError):
            raise StudyError("Choose a level from 1 (certainly real) to 6 (certainly generated).") from None
        if not 1 <= level <= 6:
            raise StudyError("Choose a level from 1 (certainly real) to 6 (certainly generated).")
        return level >= 4, None, level
    if call not in ("real", "generated"):
        raise StudyError("Answer 'real' or 'generated'.")
    conf = None
    if fmt == ResponseFormat.BINARY_CONFIDENCE:
        try:
            conf = int(confidence)
        except (TypeError, ValueError):
            raise StudyError("Choose a confidence from 1 to 5.") from None
        if not 1 <= conf <= 5:
            raise StudyError("Choose a confidence from 1 to 5.")
    return call == "generated", conf, None


def rating_submit(*, assignment: Assignment, token: str, call: str | None = None, confidence=None, scale=None) -> dict:
    """Store one answer in its own transaction and move to the next trial.

    Idempotent: a repeated submit for an image already rated changes nothing and returns the current
    state. An answer for any other image than the current one is refused.
    """
    try:
        with transaction.atomic():
            locked = Assignment.objects.select_for_update().select_related("study").get(pk=assignment.pk)
            study = locked.study
            existing = (
                Rating.objects.filter(assignment=locked, study_image__token=token).select_related("study_image").first()
            )
            if existing is not None:
                return {**_trial_state(locked, mark_shown=False), "feedback": _feedback(existing)}
            if study.status != Study.Status.OPEN:
                raise StudyError("This study is closed.")
            if locked.position >= len(locked.order):
                raise TrialMismatch("You have rated every image of this study.")
            current = StudyImage.objects.get(pk=locked.order[locked.position])
            if current.token != token:
                raise TrialMismatch("This answer is not for your current image; reload the page.")
            now = timezone.now()
            shown_at = locked.current_shown_at or now
            # The limit is enforced here, on the server's clock: a late answer is stored as timed out.
            limit = timedelta(seconds=study.time_limit_s or 0) + TIME_LIMIT_GRACE
            timed_out = bool(study.time_limit_s) and now - shown_at > limit
            if timed_out:
                called_generated, conf, level = None, None, None
            else:
                called_generated, conf, level = _parse_response(study, call=call, confidence=confidence, scale=scale)
            rating = Rating.objects.create(
                assignment=locked,
                study_image=current,
                position=locked.position,
                is_training=current.block == StudyImage.Block.TRAINING,
                called_generated=None if timed_out else called_generated,
                confidence=None if timed_out else conf,
                scale=None if timed_out else level,
                timed_out=timed_out,
                shown_at=shown_at,
                answered_at=now,
                duration_ms=int((now - shown_at).total_seconds() * 1000),
            )
            locked.position += 1
            locked.current_shown_at = None
            if locked.position >= len(locked.order):
                locked.finished_at = now
            locked.save(update_fields=["position", "current_shown_at", "finished_at"])
            return {**_trial_state(locked, mark_shown=False), "feedback": _feedback(rating)}
    except IntegrityError:
        # A concurrent duplicate won the race; the answer is stored once.
        locked = Assignment.objects.select_related("study").get(pk=assignment.pk)
        return _trial_state(locked, mark_shown=False)


def _feedback(rating: Rating) -> dict | None:
    """Feedback only in the training block; test answers get none."""
    if not rating.is_training:
        return None
    return {
        "truth": rating.study_image.truth_label,
        "correct": rating.is_correct,
        "timed_out": rating.timed_out,
    }


def assignment_progress(study: Study) -> list[dict]:
    rows = []
    for a in study.assignments.select_related("rater").order_by("pseudonym"):
        rows.append(
            {
                "pseudonym": a.pseudonym,
                "rater": a.rater.username,
                "answered": a.n_done,
                "total": len(a.order),
                "started_at": a.started_at,
                "finished_at": a.finished_at,
            }
        )
    return rows
