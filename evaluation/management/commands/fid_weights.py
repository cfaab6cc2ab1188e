from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from evaluation import services


class Command(BaseCommand):
    help = "Install the FID-Inception weights file (SHA-256 checked) or show what is installed."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        install = sub.add_parser("install", help="check a downloaded weights file and put it in place")
        install.add_argument("path", help="pt_inception-2015-12-05-6726825d.pth")
        sub.add_parser("status", help="say whether the weights are installed")

    def handle(self, *args, **o):
        if o["action"] == "install":
            try:
                status = services.weights_install(source=Path(o["path"]))
            except services.EvaluationError as exc:
                raise CommandError(str(exc)) from None
        else:
            status = services.weights_status()
        self.stdout.write(status["message"])
        if o["action"] == "status" and not status["installed"]:
            raise CommandError("FID weights are not installed")
