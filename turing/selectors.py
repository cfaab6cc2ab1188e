"""Read-side aggregates of Turing studies: statistics rows, exports."""

from turing.models import Rating, Study
from turing.stats import RatingRow


def study_rating_rows(study: Study, *, include_training: bool = False) -> list[RatingRow]:
    ratings = (
        Rating.objects.filter(assignment__study=study)
        .select_related("assignment", "assignment__rater", "study_image")
        .order_by("assignment__pseudonym", "position")
    )
    if not include_training:
        ratings = ratings.filter(is_training=False)
    # Timed-out trials have no answer; they are counted in the ratings export, not in the statistics.
    ratings = ratings.filter(called_generated__isnull=False)
    n_training = study.n_training
    rows = []
    for r in ratings:
        profile = getattr(r.assignment.rater, "rater_profile", None)
        rows.append(
            RatingRow(
                rater=r.assignment.pseudonym,
                case=r.study_image.token,
                truth=int(r.study_image.is_generated),
                call=int(r.called_generated),
                score=r.score,
                # Test positions count from the first test trial.
                position=r.position - (0 if r.is_training else n_training),
                duration_ms=float(r.duration_ms),
                generator=r.study_image.generator or None,
                rater_specialty=(profile.specialty or None) if profile else None,
                rater_experience=float(profile.years_experience)
                if profile and profile.years_experience is not None
                else None,
            )
        )
    return rows


def study_ratings_export(study: Study) -> list[dict]:
    """One row per rating, pseudonymous, with the truth joined on the server."""
    out = []
    ratings = (
        Rating.objects.filter(assignment__study=study)
        .select_related("assignment", "study_image")
        .order_by("assignment__pseudonym", "position")
    )
    for r in ratings:
        out.append(
            {
                "rater": r.assignment.pseudonym,
                "image_token": r.study_image.token,
                "block": r.study_image.block,
                "truth": r.study_image.truth_label,
                "generator": r.study_image.generator,
                "response": "" if r.called_generated is None else ("generated" if r.called_generated else "real"),
                "confidence": r.confidence if r.confidence is not None else "",
                "scale": r.scale if r.scale is not None else "",
                "score": r.score if r.score is not None else "",
                "correct": "" if r.is_correct is None else int(r.is_correct),
                "timed_out": int(r.timed_out),
                "position": r.position,
                "shown_at": r.shown_at.isoformat(),
                "answered_at": r.answered_at.isoformat(),
                "duration_ms": r.duration_ms,
            }
        )
    return out
