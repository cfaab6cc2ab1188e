import io
import json

import numpy as np
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from PIL import Image as PILImage

from accounts.permissions import admin_required
from imagesets import selectors, services
from imagesets.canonical import decode_mask_png
from imagesets.forms import ImportForm
from imagesets.importers import ImportOptions
from imagesets.models import Image, ImageSet, Split

# Overlay colours per class index (index 0 transparent); cycles for many classes.
OVERLAY_COLOURS = [
    (0, 0, 0, 0),
    (230, 60, 60, 140),
    (60, 200, 90, 140),
    (60, 120, 240, 140),
    (240, 200, 40, 140),
    (200, 80, 220, 140),
]


@admin_required
def imageset_list(request: HttpRequest) -> HttpResponse:
    return render(request, "imagesets/imageset_list.html", {"imagesets": selectors.imageset_list()})


@admin_required
def imageset_import(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        options = ImportOptions(
            size=data["size"],
            skip_empty=data["skip_empty"],
            split_seed=data["split_seed"],
            val_fraction=data["val_fraction"],
            test_fraction=data["test_fraction"],
            subjects=data["subjects"],
            seed=data["seed"],
        )
        try:
            if data["source"] == "upload":
                imageset = services.imageset_import_from_upload(
                    name=data["name"],
                    fmt=data["format"],
                    upload=data["upload"],
                    options=options,
                    user=request.user,
                    description=data["description"],
                )
            else:
                imageset = services.imageset_import_create(
                    name=data["name"],
                    fmt=data["format"],
                    source=data["path"],
                    options=options,
                    user=request.user,
                    description=data["description"],
                )
        except services.ImportRequestError as exc:
            form.add_error(None, str(exc))
        else:
            messages.info(request, f"Import of '{imageset.name}' queued.")
            return redirect("imagesets:detail", pk=imageset.pk)
    return render(request, "imagesets/imageset_import.html", {"form": form, "import_roots": _roots()})


def _roots() -> list[str]:
    from django.conf import settings

    return [str(r) for r in settings.IMPORT_ROOTS]


@admin_required
def imageset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    imageset = get_object_or_404(ImageSet, pk=pk)
    split = request.GET.get("split") or None
    if split not in (None, *Split.values):
        split = None
    page = Paginator(selectors.image_page(imageset, split=split), 48).get_page(request.GET.get("page"))
    context = {
        "imageset": imageset,
        "summary": selectors.imageset_summary(imageset),
        "page": page,
        "split": split,
        "preprocessing_json": json.dumps(imageset.preprocessing, indent=2, sort_keys=True),
        "provenance_json": json.dumps(imageset.provenance, indent=2, sort_keys=True),
        "options_json": json.dumps(imageset.import_options, indent=2, sort_keys=True),
        "overlay_legend": [
            (name, "rgba({},{},{},0.8)".format(*OVERLAY_COLOURS[i % len(OVERLAY_COLOURS)][:3]))
            for i, name in enumerate(imageset.label_names)
            if i > 0
        ],
    }
    return render(request, "imagesets/imageset_detail.html", context)


@admin_required
def imageset_status(request: HttpRequest, pk: int) -> JsonResponse:
    imageset = get_object_or_404(ImageSet, pk=pk)
    return JsonResponse(
        {
            "status": imageset.status,
            "progress": imageset.progress,
            "message": imageset.progress_message,
            "error": imageset.error,
        }
    )


@admin_required
@require_POST
def imageset_delete(request: HttpRequest, pk: int) -> HttpResponse:
    imageset = get_object_or_404(ImageSet, pk=pk)
    if imageset.status in (ImageSet.Status.QUEUED, ImageSet.Status.IMPORTING) and not imageset.is_stale:
        messages.error(request, "This set is still importing; delete it when the import has finished or failed.")
        return redirect("imagesets:detail", pk=pk)
    name = imageset.name
    services.imageset_delete(imageset=imageset)
    messages.success(request, f"Image set '{name}' deleted.")
    return redirect("imagesets:list")


@admin_required
def image_file(request: HttpRequest, pk: int) -> FileResponse:
    """The canonical PNG of one image (admins only; raters never see these URLs)."""
    image = get_object_or_404(Image, pk=pk)
    try:
        return FileResponse(image.path.open("rb"), content_type="image/png")
    except FileNotFoundError:
        raise Http404("image file missing") from None


@admin_required
def image_overlay(request: HttpRequest, pk: int) -> HttpResponse:
    """The mask as a coloured, semi-transparent PNG to lay over the image."""
    image = get_object_or_404(Image, pk=pk)
    if not image.mask_file:
        raise Http404("no mask")
    try:
        mask = decode_mask_png(str(image.mask_path))
    except FileNotFoundError:
        raise Http404("mask file missing") from None
    palette = np.array(OVERLAY_COLOURS, dtype=np.uint8)
    rgba = palette[np.where(mask == 0, 0, (mask - 1) % (len(palette) - 1) + 1)]  # (H, W, 4)
    buffer = io.BytesIO()
    PILImage.fromarray(rgba, mode="RGBA").save(buffer, format="PNG")
    return HttpResponse(buffer.getvalue(), content_type="image/png")
