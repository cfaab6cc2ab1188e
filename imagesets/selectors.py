from django.db.models import Count, Q

from imagesets.models import Image, ImageSet


def imageset_list():
    return ImageSet.objects.annotate(n_images=Count("images")).select_related("created_by").order_by("-created_at")


def imageset_counts() -> dict:
    running = [ImageSet.Status.QUEUED, ImageSet.Status.IMPORTING]
    return ImageSet.objects.aggregate(
        ready=Count("pk", filter=Q(status=ImageSet.Status.READY)),
        running=Count("pk", filter=Q(status__in=running)),
        failed=Count("pk", filter=Q(status=ImageSet.Status.FAILED)),
    )


def imageset_summary(imageset: ImageSet) -> dict:
    """Counts per split and per subject (subject -> split, images)."""
    per_split = dict(imageset.images.values_list("split").annotate(n=Count("pk")).order_by())
    subjects = list(imageset.images.values("subject", "split").annotate(n=Count("pk")).order_by("split", "subject"))
    n_subjects_per_split: dict[str, int] = {}
    for row in subjects:
        n_subjects_per_split[row["split"]] = n_subjects_per_split.get(row["split"], 0) + 1
    splits = [
        {"split": s, "images": per_split.get(s, 0), "subjects": n_subjects_per_split.get(s, 0)}
        for s in ("train", "val", "test")
    ]
    return {"splits": splits, "subjects": subjects, "total": sum(per_split.values())}


def image_page(imageset: ImageSet, *, split: str | None):
    images = Image.objects.filter(imageset=imageset)
    if split:
        images = images.filter(split=split)
    return images.order_by("index")
