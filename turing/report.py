"""The study report: statistics plus server-rendered plots (matplotlib SVG)."""

import numpy as np

from config.plots import figure_svg, plt
from turing.exports import EXPORT_KINDS
from turing.models import Study
from turing.selectors import study_rating_rows
from turing.services import assignment_progress
from turing.stats import study_statistics


def _roc_points(truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical ROC: one point per distinct threshold, positive = generated."""
    thresholds = np.unique(score)[::-1]
    pos, neg = max((truth == 1).sum(), 1), max((truth == 0).sum(), 1)
    tpr = [0.0] + [float(((score >= t) & (truth == 1)).sum() / pos) for t in thresholds]
    fpr = [0.0] + [float(((score >= t) & (truth == 0)).sum() / neg) for t in thresholds]
    return np.array(fpr), np.array(tpr)


def roc_plot(rows) -> str | None:
    by_rater: dict[str, list] = {}
    for r in rows:
        if r.score is not None:
            by_rater.setdefault(r.rater, []).append((r.truth, r.score))
    if not by_rater:
        return None
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    for rater, pairs in sorted(by_rater.items()):
        truth, score = np.array(pairs, dtype=float).T
        fpr, tpr = _roc_points(truth, score)
        ax.plot(fpr, tpr, marker=".", label=rater)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("real images called generated (1 - specificity)")
    ax.set_ylabel("generated images detected (sensitivity)")
    ax.set_title("ROC per rater")
    ax.legend(fontsize=8)
    return figure_svg(fig)


def interval_plot(
    labels: list[str],
    estimates: list[float],
    cis: list,
    *,
    title: str,
    xlabel: str,
    reference: float | None = 0.5,
    band: tuple[float, float] | None = None,
) -> str | None:
    if not labels:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 0.45 * len(labels) + 1.2))
    y = np.arange(len(labels))
    lows = [e - (c[0] if c and c[0] is not None else e) for e, c in zip(estimates, cis, strict=True)]
    highs = [(c[1] if c and c[1] is not None else e) - e for e, c in zip(estimates, cis, strict=True)]
    if band:
        ax.axvspan(*band, color="#dfeadf", label="equivalence margin")
    ax.errorbar(estimates, y, xerr=[lows, highs], fmt="o", capsize=3, color="#2357a6")
    if reference is not None:
        ax.axvline(reference, color="grey", linestyle=":")
    ax.set_yticks(y, labels)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return figure_svg(fig)


def study_report_context(study: Study) -> dict:
    rows = study_rating_rows(study)
    context: dict = {"progress": assignment_progress(study), "export_kinds": list(EXPORT_KINDS), "stats": None}
    if not rows:
        return context
    stats = study_statistics(rows, margin=study.equivalence_margin)
    margin = study.equivalence_margin
    raters = stats["raters"]
    mrmc_acc = (stats.get("mrmc") or {}).get("accuracy") or {}
    labels = [r["rater"] for r in raters]
    estimates = [r["accuracy"]["estimate"] for r in raters]
    cis = [r["accuracy"]["ci_clopper_pearson"] for r in raters]
    if mrmc_acc.get("estimate") is not None and len(raters) > 1:
        labels.append("reader average (OR)")
        estimates.append(mrmc_acc["estimate"])
        cis.append(mrmc_acc.get("ci"))
    generators = stats.get("by_generator") or []
    context.update(
        {
            "stats": stats,
            "roc_svg": roc_plot(rows),
            "accuracy_svg": interval_plot(
                labels,
                estimates,
                cis,
                title="Accuracy per rater (95% CI)",
                xlabel="accuracy",
                band=(0.5 - margin, 0.5 + margin),
            ),
            "generator_svg": interval_plot(
                [g["generator"] for g in generators],
                [g["fool_rate"]["estimate"] for g in generators],
                [g["fool_rate"]["ci_wilson"] for g in generators],
                title="Generated images called real, per generator (95% Wilson CI)",
                xlabel="fool rate",
            ),
            "hardest_images": (stats.get("by_image") or [])[:10],
        }
    )
    return context
