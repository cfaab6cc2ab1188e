from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from imagesets.models import ImageSet
from turing import services
from turing.models import ResponseFormat

User = get_user_model()


def _imageset(name: str) -> ImageSet:
    try:
        return ImageSet.objects.get(name=name)
    except ImageSet.DoesNotExist:
        raise CommandError(f"no image set named '{name}'") from None


class Command(BaseCommand):
    help = "Create a Turing study (a draft, or open it with --open). Prints the study's id."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--real", required=True, help="real image set name")
        parser.add_argument("--split", default="test", help="split of the real set (default: test)")
        parser.add_argument("--fake", required=True, help="synthetic set name(s), comma-separated")
        parser.add_argument("--generators", default="", help="generator labels, comma-separated, one per --fake set")
        parser.add_argument("--n-real", type=int, required=True)
        parser.add_argument("--n-fake", type=int, required=True)
        parser.add_argument("--raters", required=True, help="usernames, comma-separated")
        parser.add_argument("--format", default=ResponseFormat.BINARY, choices=ResponseFormat.values)
        parser.add_argument("--instructions", default="")
        parser.add_argument("--disclose-ratio", action="store_true")
        parser.add_argument("--time-limit", type=int, default=None, help="seconds per image")
        parser.add_argument("--training", type=int, default=0, help="images in a training block with feedback")
        parser.add_argument("--no-window-level", action="store_true")
        parser.add_argument("--no-zoom", action="store_true")
        parser.add_argument("--margin", type=float, default=0.10, help="equivalence margin (0.10 = ±10 points)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--open", action="store_true", help="open the study right away")

    def handle(self, *args, **o):
        fakes = [_imageset(n.strip()) for n in o["fake"].split(",") if n.strip()]
        labels = [g.strip() for g in o["generators"].split(",") if g.strip()]
        if labels and len(labels) != len(fakes):
            raise CommandError("give one generator label per --fake set")
        if not labels:
            labels = [str((s.provenance or {}).get("architecture") or s.name) for s in fakes]
        usernames = [u.strip() for u in o["raters"].split(",") if u.strip()]
        raters = list(User.objects.filter(username__in=usernames))
        missing = set(usernames) - {r.username for r in raters}
        if missing:
            raise CommandError(f"unknown rater(s): {', '.join(sorted(missing))}")
        try:
            study = services.study_save(
                name=o["name"],
                real_imageset=_imageset(o["real"]),
                sources=[services.SourceSpec(s, g) for s, g in zip(fakes, labels, strict=True)],
                raters=raters,
                instructions=o["instructions"],
                real_split=o["split"],
                n_real=o["n_real"],
                n_fake=o["n_fake"],
                disclose_ratio=o["disclose_ratio"],
                response_format=o["format"],
                time_limit_s=o["time_limit"],
                n_training=o["training"],
                allow_window_level=not o["no_window_level"],
                allow_zoom=not o["no_zoom"],
                equivalence_margin=o["margin"],
                seed=o["seed"],
            )
            if o["open"]:
                study = services.study_open(study=study)
        except services.StudyError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"Study '{study.name}' is {study.status}.")
        self.stdout.write(str(study.pk))
