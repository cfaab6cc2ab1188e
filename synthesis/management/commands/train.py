import json

from django.core.management.base import BaseCommand, CommandError

from imagesets.models import ImageSet
from synthesis import services
from synthesis.gans.registry import GANS
from synthesis.models import TrainingRun
from synthesis.presets import PRESETS, preset_overrides


def _value(raw: str):
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


class Command(BaseCommand):
    help = "Launch a GAN training run (queued on the gpu queue), or run it here with --foreground."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="image set name")
        parser.add_argument("--arch", required=True, choices=sorted(GANS))
        parser.add_argument("--kimg", type=float, required=True, help="length in thousands of real images")
        parser.add_argument("--size", type=int, default=None, help="resolution (default: the set's size)")
        parser.add_argument("--name", default="")
        parser.add_argument("--preset", default="authors", choices=sorted(PRESETS))
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="any training option, e.g. --set batch_size=32 --set lr_g=0.001 (repeatable)",
        )
        parser.add_argument("--foreground", action="store_true", help="train in this process and wait")
        parser.add_argument(
            "--no-queue",
            action="store_true",
            help="create the run without queueing it (start it with: torchrun ... manage.py run_training ID)",
        )

    def handle(self, *args, **o):
        try:
            dataset = ImageSet.objects.get(name=o["dataset"])
        except ImageSet.DoesNotExist:
            raise CommandError(f"no image set named '{o['dataset']}'") from None
        overrides = {**preset_overrides(o["preset"], o["arch"]), "kimg": o["kimg"]}
        if o["size"]:
            overrides["resolution"] = o["size"]
        for item in o["set"]:
            key, sep, raw = item.partition("=")
            if not sep:
                raise CommandError(f"--set expects KEY=VALUE, got {item!r}")
            overrides[key.strip()] = _value(raw.strip())
        try:
            run = services.training_run_launch(
                training_set=dataset,
                arch=o["arch"],
                overrides=overrides,
                name=o["name"],
                enqueue=not (o["foreground"] or o["no_queue"]),
            )
        except services.RunError as exc:
            raise CommandError(str(exc)) from None
        if o["foreground"]:
            run = services.training_run_execute(run_id=run.pk, log=lambda m: self.stderr.write(m))
            if run.status != TrainingRun.Status.DONE:
                raise CommandError(f"run {run.pk} ended {run.status}: {run.error}")
            best = "—" if run.best_metric is None else f"{run.best_metric * run.best_metric_scale:.2f}"
            self.stderr.write(f"Run {run.pk} done: {run.kimg_done:.2f} kimg, best {run.best_metric_label} {best}")
        elif o["no_queue"]:
            self.stderr.write(
                f"Run {run.pk} created; start it with: torchrun --nproc_per_node N manage.py run_training {run.pk}"
            )
        else:
            self.stderr.write(f"Run {run.pk} queued on the gpu queue.")
        self.stdout.write(str(run.pk))
