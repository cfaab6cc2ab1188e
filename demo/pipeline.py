"""The demo pipeline: train a small GAN on the cardiac phantom, sample, evaluate, open a Turing study.

It is the one place that uses synthesis, evaluation and turing together; each step goes through that
app's own services, so its progress shows on that app's pages. Every step first looks for what an
earlier attempt already made (by name), so running the pipeline again continues where it stopped.
"""

import logging

from django.contrib.auth import get_user_model

from evaluation import services as evaluation_services
from evaluation.models import Evaluation
from imagesets.importers import ImportOptions
from imagesets.models import ImageSet
from imagesets.services import imageset_import_create, imageset_import_run
from synthesis import services as synthesis_services
from synthesis.models import TrainingRun
from synthesis.presets import preset_overrides
from turing import services as turing_services
from turing.models import ResponseFormat, Study

logger = logging.getLogger(__name__)
User = get_user_model()

DATASET = "Cardiac MRI phantom 64"
RUN = "Demo DCGAN on the cardiac phantom"
SAMPLES = "Demo DCGAN samples"
STUDY = "Demo visual Turing test"
# About 4 minutes of DCGAN training on 2 idle CPU cores at 64x64: enough for recognisable hearts with their
# masks (SWD x10^3 141 -> 57; U-Net Dice trained on 120 samples 0.50, on real phantoms 0.85). At 6 kimg the
# samples were blotches and their Dice 0.05. A snapshot every 2 kimg lets the best one be sampled.
KIMG = 30.0
SNAPSHOT_KIMG = 2.0
N_SAMPLES = 120
# U-Net budget per Dice arm: about a minute at 64x64 on 2 cores; the real-data baseline reaches ~0.85.
DICE_STEPS = 200


def demo_dataset() -> ImageSet:
    existing = ImageSet.objects.filter(name=DATASET).first()
    if existing is not None and existing.status == ImageSet.Status.READY:
        return existing
    if existing is not None:
        existing.delete()
    created = imageset_import_create(
        name=DATASET,
        fmt="phantom",
        source="cardiac",
        enqueue=False,
        options=ImportOptions(size=64, subjects=24, seed=0, skip_empty=True),
        description="The cardiac phantom at 64x64, for the demo pipeline.",
    )
    return imageset_import_run(imageset_id=created.pk)


def demo_pipeline_run(*, kimg: float = KIMG, n_samples: int = N_SAMPLES, dice_steps: int = DICE_STEPS) -> Study | None:
    """Run every step that is not done yet. Returns the open study, or None if a step failed."""
    # 1. Data.
    dataset = demo_dataset()
    if dataset.status != ImageSet.Status.READY:
        logger.error("demo: the phantom could not be generated: %s", dataset.error)
        return None
    # 2. Train (or continue training).
    run = TrainingRun.objects.filter(name=RUN).order_by("-created_at").first()
    if run is None:
        run = synthesis_services.training_run_launch(
            training_set=dataset,
            arch="dcgan",
            name=RUN,
            enqueue=False,
            overrides={
                **preset_overrides("cpu-small", "dcgan"),
                "kimg": kimg,
                "snapshot_kimg": min(SNAPSHOT_KIMG, kimg),
                # SWD picks the best snapshot even with the FID weights installed: Inception features of 15
                # snapshots would add ~3 minutes on 2 cores; the evaluation step computes FID and KID anyway.
                "metric": "swd",
                "feature_metrics": [],
            },
        )
    if run.status != TrainingRun.Status.DONE:
        if run.status in (TrainingRun.Status.FAILED, TrainingRun.Status.CANCELLED) and run.can_resume:
            run = synthesis_services.training_run_resume(run=run)
        run = synthesis_services.training_run_execute(run_id=run.pk) or run
        if run.status != TrainingRun.Status.DONE:
            logger.error("demo: training ended %s: %s", run.status, run.error)
            return None
    # 3. Sample.
    samples = ImageSet.objects.filter(name=SAMPLES).first()
    if samples is not None and samples.status == ImageSet.Status.FAILED:
        samples.delete()
        samples = None
    if samples is None:
        checkpoint = run.best_checkpoint or run.latest_checkpoint
        samples = synthesis_services.sample_launch(
            run=run, checkpoint=checkpoint, count=n_samples, name=SAMPLES, enqueue=False
        )
    if samples.status != ImageSet.Status.READY:
        samples = synthesis_services.sample_execute(imageset_id=samples.pk) or samples
        if samples.status != ImageSet.Status.READY:
            logger.error("demo: sampling failed: %s", samples.error)
            return None
    # 4. Evaluate (FID, KID and precision/recall join in when the weights are installed).
    metrics = ["swd", "memorisation", "dice"]
    if evaluation_services.weights_status()["installed"]:
        metrics = ["fid", "kid", "prdc", *metrics]
    if not Evaluation.objects.filter(candidate=samples).exists():
        evaluation_services.evaluation_create(
            reference=dataset, candidates=[samples], metrics=metrics, params={"dice_steps": dice_steps}, enqueue=False
        )
    for evaluation in Evaluation.objects.filter(reference=dataset, status=Evaluation.Status.QUEUED):
        evaluation_services.evaluation_run(evaluation_id=evaluation.pk)
    # 5. The Turing study: held-out phantom images against the samples, for the demo rater.
    study = Study.objects.filter(name=STUDY).first()
    if study is None:
        rater = User.objects.filter(username="rater").first()
        n_test = dataset.images.filter(split="test").count()
        n = min(20, n_test, samples.images.count())
        study = turing_services.study_save(
            name=STUDY,
            real_imageset=dataset,
            real_split="test",
            sources=[turing_services.SourceSpec(samples, "DCGAN (demo)")],
            raters=[rater] if rater else [],
            n_real=n,
            n_fake=n,
            response_format=ResponseFormat.BINARY_CONFIDENCE,
            seed=0,
            instructions=(
                "Each image is a short-axis cardiac MRI slice. Some are real scans (here: procedural phantoms "
                "standing in for real scans), the others were generated by a GAN.\n\n"
                "Press **R** if you think the image is real, **F** if generated, then **1–5** for how sure you are, "
                "and **Enter**."
            ),
        )
    if study.status == Study.Status.DRAFT and study.raters.exists():
        study = turing_services.study_open(study=study)
    return study
