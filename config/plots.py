"""Server-rendered plots: matplotlib on the headless Agg backend, figures inlined in pages as SVG."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from django.utils.safestring import mark_safe  # noqa: E402

__all__ = ["figure_svg", "plt"]


def figure_svg(fig) -> str:
    """The figure as inline ``<svg>`` markup (XML prolog dropped), safe for a template; closes the figure."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return mark_safe(text[text.find("<svg") :])
