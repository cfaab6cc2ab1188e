from django.core.management.base import BaseCommand

from synthesis.services import runs_resume_interrupted


class Command(BaseCommand):
    help = "Queue again every training run whose worker died (stale heartbeat). Run when workers start."

    def handle(self, *args, **o):
        resumed = runs_resume_interrupted()
        self.stdout.write(
            f"resumed {len(resumed)} interrupted run(s){': ' + ', '.join(map(str, resumed)) if resumed else ''}"
        )
