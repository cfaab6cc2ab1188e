import json

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.permissions import admin_required
from imagesets.models import ImageSet
from synthesis import services
from synthesis.forms import RunForm, SampleForm
from synthesis.gans.registry import GANS
from synthesis.models import Checkpoint, TrainingRun


@admin_required
def index(request: HttpRequest) -> HttpResponse:
    runs = TrainingRun.objects.select_related("training_set")
    filters = {k: request.GET.get(k) or "" for k in ("status", "arch", "dataset")}
    if filters["arch"]:
        runs = runs.filter(arch=filters["arch"])
    if filters["dataset"]:
        runs = runs.filter(training_set_id=filters["dataset"])
    runs = list(runs)
    if filters["status"]:
        runs = [r for r in runs if r.display_status == filters["status"]]
    datasets = {r.training_set_id: r.training_set.name for r in TrainingRun.objects.select_related("training_set")}
    return render(
        request,
        "synthesis/run_list.html",
        {
            "runs": runs,
            "filters": filters,
            "archs": sorted(GANS),
            "datasets": sorted(datasets.items(), key=lambda x: x[1]),
            "statuses": ["queued", "running", "interrupted", "done", "cancelled", "failed"],
        },
    )


@admin_required
def run_create(request: HttpRequest, clone_of: int | None = None) -> HttpResponse:
    source = get_object_or_404(TrainingRun, pk=clone_of) if clone_of else None
    initial = {}
    if source is not None:
        initial = {
            "training_set": source.training_set_id,
            "arch": source.arch,
            "name": f"{source.name} (clone)",
            "kimg": source.config.get("kimg"),
            "seed": source.config.get("seed", 0),
            "extra": json.dumps(source.overrides) if source.overrides else "",
        }
    form = RunForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = services.training_run_launch(
                training_set=data["training_set"],
                arch=data["arch"],
                overrides=form.overrides(),
                name=data["name"],
                user=request.user,
                cloned_from=source,
            )
        except services.RunError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Run '{run.name}' queued on the gpu queue.")
            return redirect("synthesis:detail", pk=run.pk)
    return render(request, "synthesis/run_form.html", {"form": form, "source": source})


def _shown(value: float | None, scale: float) -> str:
    return "—" if value is None else f"{value * scale:.2f}"


@admin_required
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun.objects.select_related("training_set"), pk=pk)
    sample_form = SampleForm(run=run, initial={"name": f"{run.name} samples"})
    grids = [p.name for p in services.run_grids(run)]
    return render(
        request,
        "synthesis/run_detail.html",
        {
            "run": run,
            "grids": grids[:12],
            "sample_form": sample_form,
            # (checkpoint, its snapshot metrics as shown: scaled, two decimals)
            "checkpoints": [
                (c, [_shown(getattr(c, field), scale) for field, _, scale in run.snapshot_metrics])
                for c in run.checkpoints.order_by("-step")
            ],
            "stats": services.run_stats(run, last=25)[::-1],
            "config_items": sorted(run.config.items()),
            "samples": ImageSet.objects.filter(provenance__run_id=run.pk).order_by("-created_at"),
        },
    )


@admin_required
def run_stats(request: HttpRequest, pk: int) -> JsonResponse:
    run = get_object_or_404(TrainingRun, pk=pk)
    keys = ("kimg", "loss_G", "loss_D", "D_real", "D_fake", "aug_p", "sec_per_kimg", "img_per_s")
    stats = [{k: s.get(k) for k in keys} for s in services.run_stats(run)]
    return JsonResponse(
        {
            "status": run.display_status,
            "kimg_done": run.kimg_done,
            "kimg_total": run.kimg_total,
            "fraction": run.fraction,
            "eta_seconds": run.eta_seconds,
            "stats": stats,
            "latest_grid": next((p.name for p in services.run_grids(run)), None),
            "error": run.error,
        }
    )


@admin_required
def run_grid(request: HttpRequest, pk: int, name: str) -> FileResponse:
    run = get_object_or_404(TrainingRun, pk=pk)
    # Only files the run wrote into its grids folder, by plain name.
    if "/" in name or not name.endswith(".png"):
        raise Http404("no such grid")
    path = run.run_dir / "grids" / name
    if not path.is_file():
        raise Http404("no such grid")
    return FileResponse(path.open("rb"), content_type="image/png")


@admin_required
@require_POST
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun, pk=pk)
    try:
        services.training_run_cancel(run=run)
        messages.info(request, "Cancelling: the run stops at the end of the current tick, after a checkpoint.")
    except services.RunError as exc:
        messages.error(request, str(exc))
    return redirect("synthesis:detail", pk=pk)


@admin_required
@require_POST
def run_resume(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun, pk=pk)
    try:
        services.training_run_resume(run=run)
        messages.success(request, "Resumed from the latest checkpoint.")
    except services.RunError as exc:
        messages.error(request, str(exc))
    return redirect("synthesis:detail", pk=pk)


@admin_required
@require_POST
def run_sample(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun, pk=pk)
    form = SampleForm(request.POST, run=run)
    if form.is_valid():
        data = form.cleaned_data
        try:
            imageset = services.sample_launch(
                run=run,
                checkpoint=get_object_or_404(Checkpoint, pk=data["checkpoint"], run=run),
                count=data["count"],
                name=data["name"],
                seed_start=data["seed_start"],
                psi=data["psi"],
                user=request.user,
            )
        except services.RunError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Sampling {data['count']} images into '{imageset.name}'.")
            return redirect("imagesets:detail", pk=imageset.pk)
    else:
        messages.error(request, "Sampling: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
    return redirect("synthesis:detail", pk=pk)
