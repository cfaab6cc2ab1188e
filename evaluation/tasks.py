from django_tasks import task

from evaluation.services import evaluation_run


@task(queue_name="default")
def evaluation_run_default(evaluation_id: int) -> None:
    """Distribution metrics and memorisation; safe to run twice."""
    evaluation_run(evaluation_id=evaluation_id)


@task(queue_name="gpu")
def evaluation_run_gpu(evaluation_id: int) -> None:
    """Evaluations that train a U-Net; safe to run twice."""
    evaluation_run(evaluation_id=evaluation_id)
