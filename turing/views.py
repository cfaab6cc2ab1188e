import json

import markdown
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import admin_required
from turing import exports, report, services
from turing.forms import StudyForm
from turing.models import SIX_POINT_LABELS, Assignment, ResponseFormat, Study, StudyImage

# ---- admins ----------------------------------------------------------------------------------------


@admin_required
def index(request: HttpRequest) -> HttpResponse:
    studies = Study.objects.select_related("real_imageset").prefetch_related("sources", "assignments")
    return render(request, "turing/study_list.html", {"studies": studies})


@admin_required
def study_create(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk) if pk else None
    if study is not None and not study.is_editable:
        messages.error(request, "This study is no longer a draft; its definition is frozen.")
        return redirect("turing:detail", pk=study.pk)
    form = StudyForm(request.POST or None, instance=study)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        sources = [
            services.SourceSpec(s, label) for s, label in zip(data["sources"], data["source_labels"], strict=True)
        ]
        fields = {f: data[f] for f in services.STUDY_FIELDS}
        try:
            saved = services.study_save(
                study=study,
                name=data["name"],
                real_imageset=data["real_imageset"],
                sources=sources,
                raters=list(data["raters"]),
                user=request.user,
                **fields,
            )
        except services.StudyError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Study '{saved.name}' saved as a draft.")
            return redirect("turing:detail", pk=saved.pk)
    return render(request, "turing/study_form.html", {"form": form, "study": study})


@admin_required
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study.objects.select_related("real_imageset"), pk=pk)
    context = {
        "study": study,
        "sources": study.sources.select_related("imageset"),
        "progress": services.assignment_progress(study),
        "raters": study.raters.order_by("username"),
        "parity_json": json.dumps(study.parity_report, indent=2),
        "definition_json": json.dumps(study.frozen_definition, indent=2),
        "instructions_html": _markdown(study.instructions),
    }
    return render(request, "turing/study_detail.html", context)


@admin_required
@require_POST
def study_open(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    try:
        services.study_open(study=study)
    except services.StudyError as exc:
        messages.error(request, f"The study cannot open: {exc}")
    else:
        messages.success(request, "The study is open; raters can start.")
    return redirect("turing:detail", pk=pk)


@admin_required
@require_POST
def study_close(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    try:
        services.study_close(study=study)
    except services.StudyError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "The study is closed.")
    return redirect("turing:detail", pk=pk)


@admin_required
@require_POST
def study_delete(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    try:
        services.study_delete(study=study)
    except services.StudyError as exc:
        messages.error(request, str(exc))
        return redirect("turing:detail", pk=pk)
    messages.success(request, "Draft deleted.")
    return redirect("turing:index")


@admin_required
def study_report(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    return render(request, "turing/study_report.html", {"study": study, **report.study_report_context(study)})


@admin_required
def study_export(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    study = get_object_or_404(Study, pk=pk)
    try:
        filename, content_type, body = exports.study_export_file(study, kind)
    except KeyError:
        raise Http404("unknown export") from None
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _markdown(text: str) -> str:
    # Escape raw HTML first: instructions are written by admins but rendered to raters.
    return markdown.markdown(escape(text), extensions=["extra", "sane_lists"])


# ---- raters ----------------------------------------------------------------------------------------


@login_required
def my_studies(request: HttpRequest) -> HttpResponse:
    assignments = (
        Assignment.objects.for_rater(request.user)
        .exclude(study__status=Study.Status.DRAFT)
        .select_related("study")
        .order_by("-study__opened_at")
    )
    return render(request, "turing/my_studies.html", {"assignments": assignments})


def _own_assignment(request: HttpRequest, pk: int) -> Assignment:
    """The rater's own assignment in an opened study; anyone else's is 404 (not 403: no probing)."""
    assignment = (
        Assignment.objects.for_rater(request.user)
        .exclude(study__status=Study.Status.DRAFT)
        .select_related("study", "study__real_imageset")
        .filter(pk=pk)
        .first()
    )
    if assignment is None:
        raise Http404("no such assignment")
    return assignment


@login_required
@never_cache
def rate(request: HttpRequest, pk: int) -> HttpResponse:
    assignment = _own_assignment(request, pk)
    study = assignment.study
    imageset = study.real_imageset
    config = {
        "trialUrl": reverse("turing:trial", args=[assignment.pk]),
        "answerUrl": reverse("turing:answer", args=[assignment.pk]),
        "pauseUrl": reverse("turing:pause", args=[assignment.pk]),
        "imageUrl": reverse("turing:image", args=["TOKEN"]).removesuffix("TOKEN"),
        "format": study.response_format,
        "width": imageset.width,
        "height": imageset.height,
        "channels": imageset.channels,
        "windowLevel": study.allow_window_level,
        "zoom": study.allow_zoom,
        "timeLimit": study.time_limit_s,
    }
    context = {
        "assignment": assignment,
        "study": study,
        "config": config,
        "instructions_html": _markdown(study.instructions),
        "six_point_labels": list(enumerate(SIX_POINT_LABELS, start=1)),
        "formats": ResponseFormat,
    }
    return render(request, "turing/rate.html", context)


def _json(data: dict, status: int = 200) -> JsonResponse:
    response = JsonResponse(data, status=status)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def trial(request: HttpRequest, pk: int) -> JsonResponse:
    assignment = _own_assignment(request, pk)
    return _json(services.trial_current(assignment=assignment))


@login_required
@require_POST
def answer(request: HttpRequest, pk: int) -> JsonResponse:
    assignment = _own_assignment(request, pk)
    try:
        body = json.loads(request.body or b"{}")
    except json.JSONDecodeError:
        return _json({"error": "The answer was not valid JSON."}, status=400)
    if not isinstance(body, dict) or not isinstance(body.get("token"), str):
        return _json({"error": "The answer names no image."}, status=400)
    try:
        state = services.rating_submit(
            assignment=assignment,
            token=body["token"],
            call=body.get("call"),
            confidence=body.get("confidence"),
            scale=body.get("scale"),
        )
    except services.TrialMismatch as exc:
        return _json({"error": str(exc)}, status=409)
    except services.StudyError as exc:
        return _json({"error": str(exc)}, status=400)
    return _json(state)


@login_required
@require_POST
def pause(request: HttpRequest, pk: int) -> JsonResponse:
    assignment = _own_assignment(request, pk)
    services.trial_pause(assignment=assignment)
    return _json({"paused": True})


@login_required
@require_GET
def image(request: HttpRequest, token: str) -> HttpResponse:
    """Raw pixels of the rater's current image: same length and headers for every image of a study."""
    study_image = (
        StudyImage.objects.filter(token=token, study__status=Study.Status.OPEN).select_related("study").first()
    )
    if study_image is None:
        raise Http404("not found")
    assignment = Assignment.objects.filter(study=study_image.study, rater=request.user).first()
    if (
        assignment is None
        or assignment.position >= len(assignment.order)
        or assignment.order[assignment.position] != study_image.pk
    ):
        raise Http404("not found")
    body = study_image.blob_path.read_bytes()
    response = HttpResponse(body, content_type="application/octet-stream")
    response["Cache-Control"] = "no-store, private"
    response["Content-Disposition"] = "inline"
    return response
