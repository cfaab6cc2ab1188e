from django.core.management.base import BaseCommand, CommandError

from imagesets.models import ImageSet
from synthesis import services
from synthesis.models import TrainingRun


class Command(BaseCommand):
    help = "Sample N images (and masks) from a run's checkpoint into a new synthetic image set. Prints its id."

    def add_arguments(self, parser):
        parser.add_argument("run_id", type=int)
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--name", required=True, help="name of the new image set")
        parser.add_argument("--checkpoint", default="best", help="'best', 'latest' or a step number")
        parser.add_argument("--seed-start", type=int, default=0)
        parser.add_argument("--psi", type=float, default=1.0, help="truncation (stylegan only)")

    def handle(self, *args, **o):
        try:
            run = TrainingRun.objects.get(pk=o["run_id"])
        except TrainingRun.DoesNotExist:
            raise CommandError(f"no run {o['run_id']}") from None
        which = o["checkpoint"]
        if which == "best":
            checkpoint = run.best_checkpoint or run.latest_checkpoint
        elif which == "latest":
            checkpoint = run.latest_checkpoint
        else:
            checkpoint = run.checkpoints.filter(step=int(which)).first() if which.isdigit() else None
        if checkpoint is None:
            raise CommandError(f"run {run.pk} has no checkpoint '{which}'")
        try:
            imageset = services.sample_launch(
                run=run,
                checkpoint=checkpoint,
                count=o["count"],
                name=o["name"],
                seed_start=o["seed_start"],
                psi=o["psi"],
                enqueue=False,
            )
        except services.RunError as exc:
            raise CommandError(str(exc)) from None
        imageset = services.sample_execute(imageset_id=imageset.pk)
        if imageset.status != ImageSet.Status.READY:
            raise CommandError(f"sampling failed: {imageset.error}")
        self.stderr.write(f"{imageset.images.count()} images in '{imageset.name}'")
        self.stdout.write(str(imageset.pk))
