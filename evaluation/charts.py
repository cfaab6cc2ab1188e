"""Bar charts with error bars for the comparison page (matplotlib SVG, rendered on the server)."""

import numpy as np

from config.plots import figure_svg, plt


def dice_chart(table: dict) -> str | None:
    """Grouped bars: Dice per class per generator, error bars = std over test images."""
    rows = [r for r in table["rows"] if r.get("dice_mean") is not None]
    classes = table["classes"]
    if not rows or not classes:
        return None
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 * len(classes) * max(1, len(rows)) * 0.5), 3.2))
    width = 0.8 / len(rows)
    x = np.arange(len(classes))
    for i, row in enumerate(rows):
        means = [row.get(f"dice_{c}") or 0.0 for c in classes]
        stds = [row.get(f"dice_{c}_std") or 0.0 for c in classes]
        ax.bar(x + i * width - 0.4 + width / 2, means, width, yerr=stds, capsize=2, label=row["generator"])
    ax.set_xticks(x, classes)
    ax.set_ylim(0, 1)
    ax.set_ylabel("Dice on real test images")
    ax.legend(fontsize=7, ncol=2)
    return figure_svg(fig)


def metric_chart(table: dict, key: str, title: str, *, scale: float = 1.0) -> str | None:
    rows = [r for r in table["rows"] if r.get(key) is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(4.5, 0.35 * len(rows) + 1.0))
    values = [r[key] * scale for r in rows]
    errors = [(r.get(f"{key}_std") or 0.0) * scale for r in rows]
    ax.barh([r["generator"] for r in rows], values, xerr=errors, capsize=2, color="#2357a6")
    ax.invert_yaxis()
    ax.set_title(title, fontsize=9)
    return figure_svg(fig)
