"""Read-side aggregates: the comparison table, like the paper's tables, per reference set."""

from evaluation.models import Evaluation


def _num(value):
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def evaluation_row(e: Evaluation) -> dict:
    """Flat numbers of one finished evaluation (None where not computed or unavailable)."""
    r = e.results or {}
    fid, kid, prdc, swd = r.get("fid") or {}, r.get("kid") or {}, r.get("prdc") or {}, r.get("swd") or {}
    mem = (r.get("memorisation") or {}).get("pixel") or {}
    dice = r.get("dice") or {}
    provenance = (e.candidate.provenance or {}) if e.candidate else {}
    row = {
        "evaluation": e.pk,
        "reference": e.reference.name,
        "candidate": e.candidate.name if e.candidate else "",
        "generator": e.generator_label,
        "run": provenance.get("run_id"),
        "architecture": provenance.get("architecture", "" if e.candidate else "real"),
        "is_baseline": e.candidate is None,
        "fid": _num(fid.get("fid")),
        "fid_biased": fid.get("biased"),
        "kid_mean": _num(kid.get("kid_mean")),
        "kid_std": _num(kid.get("kid_std")),
        "precision": _num(prdc.get("precision")),
        "recall": _num(prdc.get("recall")),
        "density": _num(prdc.get("density")),
        "coverage": _num(prdc.get("coverage")),
        "swd": _num(swd.get("swd_avg")),
        "memorised_fraction": _num(mem.get("fraction_flagged")),
        "dice_mean": _num(dice.get("foreground_mean")),
        "unavailable": sorted((r.get("unavailable") or {}).keys()),
        "finished_at": e.finished_at.isoformat() if e.finished_at else None,
    }
    for name, cell in (dice.get("dice") or {}).items():
        row[f"dice_{name}"] = _num(cell.get("mean"))
        row[f"dice_{name}_std"] = _num(cell.get("std"))
    for name, cell in (dice.get("hd95_mm") or {}).items():
        row[f"hd95_{name}"] = _num(cell.get("mean"))
    return row


def comparison_tables() -> list[dict]:
    """One table per reference set: the latest finished evaluation per candidate (and the baseline),
    merged across metrics so a candidate evaluated in two batches shows in one row."""
    finished = (
        Evaluation.objects.filter(status=Evaluation.Status.DONE)
        .select_related("reference", "candidate")
        .order_by("reference__name", "finished_at")
    )
    tables: dict[int, dict] = {}
    for e in finished:
        table = tables.setdefault(e.reference_id, {"reference": e.reference, "rows": {}, "classes": []})
        if e.candidate is not None and e.dice_arm != Evaluation.DiceArm.SYNTHETIC and "dice" in e.metrics:
            key = (e.candidate_id, e.dice_arm)
        else:
            key = (e.candidate_id, "main")
        row = evaluation_row(e)
        merged = table["rows"].setdefault(key, {})
        # Later evaluations overwrite earlier numbers, metric by metric.
        merged.update({k: v for k, v in row.items() if v is not None and v != []} | {"evaluation": e.pk})
        for name in (e.results.get("dice") or {}).get("label_names", [])[1:]:
            if name not in table["classes"]:
                table["classes"].append(name)
    out = []
    for table in tables.values():
        rows = sorted(table["rows"].values(), key=lambda r: (not r.get("is_baseline", False), r.get("generator", "")))
        out.append({"reference": table["reference"], "rows": rows, "classes": table["classes"]})
    return out
