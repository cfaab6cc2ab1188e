"""The demo pipeline end to end with a tiny budget: data, training, samples, evaluation, an open study."""

import pytest
from django.core.management import call_command

from demo import pipeline
from evaluation.models import Evaluation
from imagesets.models import ImageSet
from synthesis.models import TrainingRun
from turing.models import Assignment, Study

pytestmark = pytest.mark.django_db


def test_pipeline_runs_every_step_and_continues_where_it_stopped(monkeypatch):
    call_command("seed_demo", "--no-data")  # the demo accounts
    monkeypatch.setattr(pipeline, "demo_dataset", _small_dataset)
    study = pipeline.demo_pipeline_run(kimg=0.032, n_samples=12, dice_steps=5)
    assert study is not None and study.status == Study.Status.OPEN
    run = TrainingRun.objects.get(name=pipeline.RUN)
    assert run.status == TrainingRun.Status.DONE
    samples = ImageSet.objects.get(name=pipeline.SAMPLES)
    assert samples.kind == ImageSet.Kind.SYNTHETIC and samples.images.count() == 12
    assert samples.provenance["run_id"] == run.pk
    evaluations = Evaluation.objects.all()
    assert {e.status for e in evaluations} == {Evaluation.Status.DONE}
    assert any(e.candidate is None for e in evaluations)  # the real-data Dice baseline
    assignment = Assignment.objects.get(study=study)
    assert assignment.rater.username == "rater" and len(assignment.order) == 2 * study.n_real
    # Running it again changes nothing.
    again = pipeline.demo_pipeline_run(kimg=0.032, n_samples=12, dice_steps=5)
    assert again.pk == study.pk
    assert TrainingRun.objects.count() == 1 and Evaluation.objects.count() == evaluations.count()


def _small_dataset() -> ImageSet:
    from imagesets.importers import ImportOptions
    from imagesets.services import imageset_import_create, imageset_import_run

    existing = ImageSet.objects.filter(name=pipeline.DATASET).first()
    if existing:
        return existing
    created = imageset_import_create(
        name=pipeline.DATASET,
        fmt="phantom",
        source="cardiac",
        enqueue=False,
        options=ImportOptions(size=32, subjects=6, seed=0, skip_empty=True),
    )
    return imageset_import_run(imageset_id=created.pk)
