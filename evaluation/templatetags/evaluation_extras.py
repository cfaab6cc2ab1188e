from django import template

register = template.Library()


@register.filter
def dice_cell(row: dict, cls: str) -> str:
    """'0.812 ± 0.061' for a Dice class column, or an em dash."""
    mean, std = row.get(f"dice_{cls}"), row.get(f"dice_{cls}_std")
    if mean is None:
        return "—"
    return f"{mean:.3f} ± {std:.3f}" if std is not None else f"{mean:.3f}"


@register.filter
def scaled(value, factor) -> str:
    """value x factor with 2 decimals (KID and SWD are shown x10^3), or an em dash."""
    try:
        return f"{float(value) * float(factor):.2f}"
    except (TypeError, ValueError):
        return "—"
