import os

import torch
from django.core.management.base import BaseCommand, CommandError

from synthesis import services
from synthesis.gans.trainer import TrainConfig, train
from synthesis.models import TrainingRun


class Command(BaseCommand):
    help = (
        "Run a queued training run in this process. Under torchrun every rank calls it: rank 0 claims the run "
        "and reports to the database, the other ranks only train."
    )

    def add_arguments(self, parser):
        parser.add_argument("run_id", type=int)

    def handle(self, *args, **o):
        rank = int(os.environ.get("RANK", "0"))
        try:
            run = TrainingRun.objects.select_related("training_set").get(pk=o["run_id"])
        except TrainingRun.DoesNotExist:
            raise CommandError(f"no run {o['run_id']}") from None
        if rank == 0:
            done = services.training_run_execute(run_id=run.pk, log=lambda m: self.stderr.write(m))
            if done is None:
                raise CommandError(f"run {run.pk} is {run.status}; only a queued or interrupted run can start")
            if done.status == TrainingRun.Status.FAILED:
                # A non-zero exit makes torchrun stop the other ranks, which would otherwise wait for rank 0.
                raise CommandError(f"run {done.pk} failed: {done.error}")
            self.stderr.write(f"run {done.pk} ended {done.status} at {done.kimg_done:.2f} kimg")
            return
        # Other ranks: the same data and configuration; the trainer broadcasts rank 0's abort decision.
        cfg = TrainConfig.from_dict(run.config)
        latest = run.run_dir / "checkpoints" / "latest.pt"
        train(
            cfg,
            services.training_data(run, cfg),
            run.run_dir,
            resume_from=latest if latest.exists() else None,
            device="cuda" if torch.cuda.is_available() else "cpu",
        )
