import csv
import io
import json

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render

from accounts.permissions import admin_required
from evaluation import charts, selectors, services
from evaluation.forms import EvaluationForm
from evaluation.models import Evaluation
from imagesets.models import Image


@admin_required
def index(request: HttpRequest) -> HttpResponse:
    tables = selectors.comparison_tables()
    for table in tables:
        table["dice_svg"] = charts.dice_chart(table)
        table["fid_svg"] = charts.metric_chart(table, "fid", "FID (lower is better)")
        table["swd_svg"] = charts.metric_chart(table, "swd", "SWD ×10³ (lower is better)", scale=1e3)
    recent = Evaluation.objects.select_related("reference", "candidate")[:30]
    return render(
        request,
        "evaluation/index.html",
        {"tables": tables, "recent": recent, "weights": services.weights_status()},
    )


@admin_required
def evaluation_create(request: HttpRequest) -> HttpResponse:
    form = EvaluationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            created = services.evaluation_create(
                reference=data["reference"],
                candidates=list(data["candidates"]),
                metrics=list(data["metrics"]),
                params={
                    "reference_split": data["reference_split"],
                    "dice_steps": data["dice_steps"],
                    "dice_seeds": data["dice_seeds"],
                },
                dice_arm=data["dice_arm"],
                include_baseline=data["include_baseline"],
                user=request.user,
            )
        except services.EvaluationError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"{len(created)} evaluation(s) queued.")
            return redirect("evaluation:index")
    return render(request, "evaluation/evaluation_form.html", {"form": form, "weights": services.weights_status()})


@admin_required
def evaluation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    evaluation = get_object_or_404(Evaluation.objects.select_related("reference", "candidate"), pk=pk)
    pairs = ((evaluation.results or {}).get("memorisation") or {}).get("pairs") or []
    ids = {p["candidate_image"] for p in pairs} | {p["training_image"] for p in pairs}
    existing = set(Image.objects.filter(pk__in=ids).values_list("pk", flat=True))
    context = {
        "evaluation": evaluation,
        "row": selectors.evaluation_row(evaluation) if evaluation.status == Evaluation.Status.DONE else None,
        "results_json": json.dumps(evaluation.results, indent=2),
        "protocol_json": json.dumps(evaluation.protocol, indent=2),
        "params_json": json.dumps(evaluation.params, indent=2),
        "pairs": [p for p in pairs if p["candidate_image"] in existing and p["training_image"] in existing],
    }
    return render(request, "evaluation/evaluation_detail.html", context)


@admin_required
def evaluation_status(request: HttpRequest, pk: int) -> JsonResponse:
    e = get_object_or_404(Evaluation, pk=pk)
    return JsonResponse({"status": e.status, "progress": e.progress, "message": e.progress_message, "error": e.error})


@admin_required
def comparison_export(request: HttpRequest, fmt: str) -> HttpResponse:
    rows = [row for table in selectors.comparison_tables() for row in table["rows"]]
    if fmt == "json":
        response = HttpResponse(json.dumps(rows, indent=2), content_type="application/json")
    else:
        fields = sorted(
            {k for row in rows for k in row}, key=lambda k: (k not in _FIRST, _FIRST.index(k) if k in _FIRST else 0, k)
        )
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (";".join(v) if isinstance(v, list) else v) for k, v in row.items()})
        response = HttpResponse(buffer.getvalue(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="comparison.{fmt}"'
    return response


_FIRST = [
    "reference",
    "generator",
    "architecture",
    "run",
    "candidate",
    "is_baseline",
    "fid",
    "fid_biased",
    "kid_mean",
    "kid_std",
    "precision",
    "recall",
    "density",
    "coverage",
    "swd",
    "memorised_fraction",
    "dice_mean",
]
