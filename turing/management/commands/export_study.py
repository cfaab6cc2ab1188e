from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from turing.exports import EXPORT_KINDS, study_export_file
from turing.models import Study


class Command(BaseCommand):
    help = "Write a study's ratings, statistics, iMRMC/MRMCaov files and design manifest into a folder."

    def add_arguments(self, parser):
        parser.add_argument("name", help="study name")
        parser.add_argument("--out", required=True, help="output folder (created if missing)")

    def handle(self, *args, **o):
        try:
            study = Study.objects.get(name=o["name"])
        except Study.DoesNotExist:
            raise CommandError(f"no study named '{o['name']}'") from None
        out = Path(o["out"])
        out.mkdir(parents=True, exist_ok=True)
        for kind in EXPORT_KINDS:
            filename, _, body = study_export_file(study, kind)
            (out / filename).write_text(body)
            self.stdout.write(str(out / filename))
