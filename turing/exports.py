"""Study exports: ratings CSV, statistics CSV/JSON, iMRMC and MRMCaov input files, design manifest."""

import csv
import io
import json

from turing.models import Study
from turing.selectors import study_rating_rows, study_ratings_export
from turing.stats import study_statistics

EXPORT_KINDS = {
    "ratings.csv": "text/csv",
    "statistics.json": "application/json",
    "statistics.csv": "text/csv",
    "imrmc.csv": "text/csv",
    "mrmcaov.csv": "text/csv",
    "design.json": "application/json",
}


def _csv(rows: list[dict], fieldnames: list[str] | None = None) -> str:
    buffer = io.StringIO()
    fieldnames = fieldnames or (list(rows[0].keys()) if rows else [])
    writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def study_statistics_or_none(study: Study) -> dict | None:
    rows = study_rating_rows(study)
    if not rows:
        return None
    return study_statistics(rows, margin=study.equivalence_margin)


def _statistics_csv(stats: dict | None) -> str:
    """Flat table: scope (pooled / rater / generator / reader-average), name, metric, estimate, CIs."""
    out: list[dict] = []
    proportions = ("accuracy", "sensitivity", "specificity", "fool_rate", "false_alarm_rate", "called_generated_rate")

    def emit(scope: str, name: str, block: dict) -> None:
        for metric in proportions:
            value = block.get(metric)
            if isinstance(value, dict):
                cp, wilson = value.get("ci_clopper_pearson") or [None, None], value.get("ci_wilson") or [None, None]
                out.append(
                    {
                        "scope": scope,
                        "name": name,
                        "metric": metric,
                        "k": value.get("k"),
                        "n": value.get("n"),
                        "estimate": value.get("estimate"),
                        "cp_low": cp[0],
                        "cp_high": cp[1],
                        "wilson_low": wilson[0],
                        "wilson_high": wilson[1],
                    }
                )
        chance = block.get("chance") or {}
        for key in ("p_two_sided", "p_tost", "verdict"):
            if key in chance:
                out.append({"scope": scope, "name": name, "metric": key, "estimate": chance[key]})
        auc = block.get("auc")
        if isinstance(auc, dict) and auc.get("auc") is not None:
            ci = auc.get("ci") or [None, None]
            out.append(
                {
                    "scope": scope,
                    "name": name,
                    "metric": "auc",
                    "estimate": auc["auc"],
                    "cp_low": ci[0],
                    "cp_high": ci[1],
                }
            )

    if stats:
        emit("pooled", "all", stats.get("pooled") or {})
        for block in stats.get("raters") or []:
            emit("rater", block["rater"], block)
        for block in stats.get("by_generator") or []:
            emit("generator", block["generator"], block)
        for fom, block in (stats.get("mrmc") or {}).items():
            if isinstance(block, dict) and block.get("estimate") is not None:
                ci = block.get("ci") or [None, None]
                out.append(
                    {
                        "scope": "reader_average_or",
                        "name": fom,
                        "metric": fom,
                        "estimate": block["estimate"],
                        "cp_low": ci[0],
                        "cp_high": ci[1],
                    }
                )
                out.append(
                    {"scope": "reader_average_or", "name": fom, "metric": "verdict", "estimate": block.get("verdict")}
                )
        kappa = (stats.get("agreement") or {}).get("fleiss") or {}
        if kappa.get("kappa") is not None:
            ci = kappa.get("ci") or [None, None]
            out.append(
                {
                    "scope": "agreement",
                    "name": "all",
                    "metric": "fleiss_kappa",
                    "estimate": kappa["kappa"],
                    "cp_low": ci[0],
                    "cp_high": ci[1],
                }
            )
    fields = ["scope", "name", "metric", "k", "n", "estimate", "cp_low", "cp_high", "wilson_low", "wilson_high"]
    return _csv(out, fields)


def _imrmc(study: Study) -> str:
    """iMRMC input: a truth block (reader -1) then reader scores; one modality."""
    rows = study_rating_rows(study)
    lines = [
        f"Study: {study.name}",
        "Scores: higher = more confident the image is generated",
        "BEGIN DATA:",
    ]
    truths = {}
    for r in rows:
        truths[r.case] = r.truth
    lines += [f"-1,{case},0,{truth}" for case, truth in sorted(truths.items())]
    lines += [f"{r.rater},{r.case},HUMAN,{r.score}" for r in rows if r.score is not None]
    return "\n".join(lines) + "\n"


def _mrmcaov(study: Study) -> str:
    rows = study_rating_rows(study)
    return _csv(
        [
            {"reader": r.rater, "treatment": "human", "case": r.case, "truth": r.truth, "rating": r.score}
            for r in rows
            if r.score is not None
        ],
        ["reader", "treatment", "case", "truth", "rating"],
    )


def study_export_file(study: Study, kind: str) -> tuple[str, str, str]:
    """(file name, content type, body) for one export kind; KeyError for an unknown kind."""
    content_type = EXPORT_KINDS[kind]
    slug = "".join(c if c.isalnum() else "-" for c in study.name).strip("-").lower() or "study"
    if kind == "ratings.csv":
        body = _csv(study_ratings_export(study), None) or "rater\n"
    elif kind == "statistics.json":
        body = json.dumps(study_statistics_or_none(study), indent=2, allow_nan=False)
    elif kind == "statistics.csv":
        body = _statistics_csv(study_statistics_or_none(study))
    elif kind == "imrmc.csv":
        body = _imrmc(study)
    elif kind == "mrmcaov.csv":
        body = _mrmcaov(study)
    else:
        body = json.dumps(
            {"definition": study.frozen_definition, "parity_report": study.parity_report, "status": study.status},
            indent=2,
            default=str,
        )
    return f"{slug}-{kind}", content_type, body
