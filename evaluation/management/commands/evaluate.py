import json

from django.core.management.base import BaseCommand, CommandError

from evaluation import services
from evaluation.models import METRIC_NAMES, Evaluation
from imagesets.models import ImageSet


def _set(name: str) -> ImageSet:
    try:
        return ImageSet.objects.get(name=name)
    except ImageSet.DoesNotExist:
        raise CommandError(f"no image set named '{name}'") from None


class Command(BaseCommand):
    help = "Evaluate synthetic set(s) against a real reference, synchronously; prints the results as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--reference", required=True, help="real image set name")
        parser.add_argument("--candidate", required=True, help="synthetic set name(s), comma-separated")
        parser.add_argument("--metrics", default="fid,kid,prdc,swd", help=f"comma-separated: {','.join(METRIC_NAMES)}")
        parser.add_argument("--reference-split", default="train", help="train, val, test or all")
        parser.add_argument("--dice-steps", type=int, default=services.DEFAULT_PARAMS["dice_steps"])
        parser.add_argument("--dice-seeds", default="0", help="comma-separated seeds")
        parser.add_argument("--no-baseline", action="store_true", help="skip the real-data Dice baseline")

    def handle(self, *args, **o):
        reference = _set(o["reference"])
        candidates = [_set(n.strip()) for n in o["candidate"].split(",") if n.strip()]
        metrics = [m.strip() for m in o["metrics"].split(",") if m.strip()]
        try:
            seeds = [int(s) for s in o["dice_seeds"].split(",") if s.strip()]
        except ValueError:
            raise CommandError("--dice-seeds must be whole numbers separated by commas") from None
        try:
            created = services.evaluation_create(
                reference=reference,
                candidates=candidates,
                metrics=metrics,
                params={"reference_split": o["reference_split"], "dice_steps": o["dice_steps"], "dice_seeds": seeds},
                include_baseline=not o["no_baseline"],
                enqueue=False,
            )
        except services.EvaluationError as exc:
            raise CommandError(str(exc)) from None
        verbose = o["verbosity"] >= 2
        failed = False
        out = []
        for evaluation in created:
            done = services.evaluation_run(
                evaluation_id=evaluation.pk,
                echo=(lambda f, m: self.stderr.write(f"[{f:5.1%}] {m}")) if verbose else None,
            )
            failed |= done.status != Evaluation.Status.DONE
            out.append(
                {
                    "evaluation": done.pk,
                    "candidate": done.candidate.name if done.candidate else None,
                    "status": done.status,
                    "error": done.error,
                    "results": done.results,
                }
            )
        self.stdout.write(json.dumps(out, indent=2, default=str))
        if failed:
            raise CommandError("an evaluation failed; see its error above")
