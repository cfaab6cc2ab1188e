from django_tasks import task

from imagesets.services import imageset_import_run


@task(queue_name="default")
def imageset_import(imageset_id: int) -> None:
    """Background import; safe to run twice (only a queued or stale set is picked up)."""
    imageset_import_run(imageset_id=imageset_id)
