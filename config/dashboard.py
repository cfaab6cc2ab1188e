"""The admin's home: what is running, what happened recently, and the next step for each thing."""

from django.urls import reverse

from evaluation.models import Evaluation
from imagesets.models import ImageSet
from synthesis.models import TrainingRun
from turing.models import Study


def dashboard_context() -> dict:
    running_imports = ImageSet.objects.filter(status__in=[ImageSet.Status.QUEUED, ImageSet.Status.IMPORTING])
    runs = list(TrainingRun.objects.select_related("training_set")[:50])
    running_runs = [r for r in runs if r.status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)]
    running_evals = Evaluation.objects.filter(
        status__in=[Evaluation.Status.QUEUED, Evaluation.Status.RUNNING]
    ).select_related("reference", "candidate")
    studies = list(Study.objects.select_related("real_imageset").prefetch_related("assignments")[:20])
    open_studies = [s for s in studies if s.status == Study.Status.OPEN]
    for study in open_studies:
        assignments = list(study.assignments.all())
        study.n_done = sum(a.n_done for a in assignments)
        study.n_total = sum(len(a.order) for a in assignments)
        study.n_finished = sum(1 for a in assignments if a.is_finished)
        study.n_raters = len(assignments)
    return {
        "running_imports": running_imports,
        "running_runs": running_runs,
        "running_evals": running_evals,
        "open_studies": open_studies,
        "recent_runs": runs[:6],
        "recent_evals": Evaluation.objects.select_related("reference", "candidate")[:6],
        "recent_studies": studies[:6],
        "imagesets": ImageSet.objects.order_by("-created_at")[:6],
        "next_steps": next_steps(),
    }


def next_steps() -> list[dict]:
    """Suggestions that follow the data flow: import -> train -> sample -> evaluate -> study -> report."""
    steps = []
    real_sets = list(ImageSet.objects.ready().real())
    if not real_sets:
        steps.append(
            {
                "text": "Import a dataset (ACDC, SLiver07, IDRiD, a folder, or a demo phantom).",
                "url": reverse("imagesets:import"),
                "action": "Import",
            }
        )
    trained_on = set(TrainingRun.objects.values_list("training_set_id", flat=True))
    for s in real_sets:
        if s.pk not in trained_on:
            steps.append(
                {"text": f"Train a GAN on '{s.name}'.", "url": reverse("synthesis:create"), "action": "New run"}
            )
            break
    sampled_runs = set(ImageSet.objects.synthetic().values_list("provenance__run_id", flat=True))
    for run in TrainingRun.objects.filter(status=TrainingRun.Status.DONE)[:20]:
        if run.pk not in sampled_runs:
            steps.append(
                {
                    "text": f"Sample a synthetic set from '{run.name}'.",
                    "url": reverse("synthesis:detail", args=[run.pk]),
                    "action": "Sample",
                }
            )
            break
    evaluated = set(Evaluation.objects.exclude(candidate=None).values_list("candidate_id", flat=True))
    studied = set(Study.objects.values_list("sources__imageset_id", flat=True))
    synthetic = list(ImageSet.objects.ready().synthetic()[:50])
    for s in synthetic:
        if s.pk not in evaluated:
            steps.append(
                {
                    "text": f"Evaluate '{s.name}' (FID, SWD, U-Net Dice).",
                    "url": reverse("evaluation:create"),
                    "action": "Evaluate",
                }
            )
            break
    for s in synthetic:
        if s.pk not in studied:
            steps.append(
                {
                    "text": f"Put '{s.name}' in front of radiologists in a Turing study.",
                    "url": reverse("turing:create"),
                    "action": "New study",
                }
            )
            break
    for study in Study.objects.filter(status=Study.Status.OPEN):
        assignments = list(study.assignments.all())
        if assignments and all(a.is_finished for a in assignments):
            steps.append(
                {
                    "text": f"Every rater finished '{study.name}': close it and read the report.",
                    "url": reverse("turing:detail", args=[study.pk]),
                    "action": "Open study",
                }
            )
    return steps
