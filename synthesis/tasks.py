from django_tasks import task

from synthesis.services import sample_execute, training_run_execute


@task(queue_name="gpu")
def training_run_task(run_id: int) -> None:
    """Train (or resume) a run; safe to run twice."""
    training_run_execute(run_id=run_id)


@task(queue_name="gpu")
def sample_task(imageset_id: int) -> None:
    """Generate a synthetic set from a checkpoint; safe to run twice."""
    sample_execute(imageset_id=imageset_id)
