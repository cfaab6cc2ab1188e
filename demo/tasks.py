from django_tasks import task

from demo.pipeline import demo_pipeline_run


@task(queue_name="gpu")
def demo_pipeline(kimg: float | None = None) -> None:
    """The whole demo pipeline on the gpu worker; running it again continues where it stopped."""
    demo_pipeline_run(**({"kimg": kimg} if kimg else {}))
