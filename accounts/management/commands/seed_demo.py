import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.models import RaterProfile
from accounts.services import rater_create
from imagesets.importers import ImportOptions
from imagesets.models import ImageSet
from imagesets.services import imageset_delete, imageset_import_create, imageset_import_run

User = get_user_model()

# (name, phantom kind, subjects): small enough to import in well under a minute on 2 CPU cores.
DEMO_SETS = [
    ("Cardiac MRI phantom", "cardiac", 24),
    ("Liver CT phantom", "liver", 16),
]


class Command(BaseCommand):
    help = "Create the demo admin and rater accounts and import the demo phantom sets. Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--size", type=int, default=128)
        parser.add_argument("--no-data", action="store_true", help="accounts only")
        parser.add_argument(
            "--no-pipeline",
            action="store_true",
            help="do not queue the demo pipeline (train, sample, evaluate, open a Turing study)",
        )

    def handle(self, *args, **opts):
        admin_password = os.environ.get("DEMO_ADMIN_PASSWORD", "admin")
        rater_password = os.environ.get("DEMO_RATER_PASSWORD", "rater")
        admin, created = User.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
        if created:
            admin.set_password(admin_password)
            admin.save()
        rater = User.objects.filter(username="rater").first()
        if rater is None:
            rater = rater_create(
                username="rater", first_name="Demo", last_name="Rater", specialty="radiology", years_experience=5
            )
            rater.set_password(rater_password)
            rater.save()
        RaterProfile.objects.get_or_create(user=rater)
        if not opts["no_data"]:
            for name, kind, subjects in DEMO_SETS:
                self._ensure_phantom(name, kind, subjects, opts["size"])
            if not opts["no_pipeline"] and os.environ.get("DEMO_PIPELINE", "1") != "0":
                self._queue_pipeline()
        self.stdout.write(
            self.style.SUCCESS("Demo accounts: ")
            + f"admin / {admin_password if created else '(unchanged)'}   rater / {rater_password}"
            + ("" if created else "  (admin existed already; its password was not changed)")
        )

    def _queue_pipeline(self) -> None:
        from demo.pipeline import STUDY
        from demo.tasks import demo_pipeline
        from turing.models import Study

        if Study.objects.filter(name=STUDY).exclude(status=Study.Status.DRAFT).exists():
            return
        # Continues where an earlier attempt stopped; each step shows its progress on its own page.
        demo_pipeline.enqueue()
        self.stdout.write("Queued the demo pipeline on the gpu worker: train, sample, evaluate, open a Turing study.")

    def _ensure_phantom(self, name: str, kind: str, subjects: int, size: int) -> None:
        existing = ImageSet.objects.filter(name=name).first()
        if existing is not None and existing.status == ImageSet.Status.READY:
            return
        if existing is not None:
            imageset_delete(imageset=existing)
        self.stdout.write(f"Generating '{name}' ({subjects} subjects, {size}x{size}) ...")
        imageset = imageset_import_create(
            name=name,
            fmt="phantom",
            source=kind,
            options=ImportOptions(size=size, subjects=subjects, seed=0),
            description="Procedurally generated demo phantom.",
            enqueue=False,
        )
        imageset = imageset_import_run(imageset_id=imageset.pk)
        if imageset.status != ImageSet.Status.READY:
            raise CommandError(f"could not generate '{name}': {imageset.error}")
        self.stdout.write(f"  {imageset.images.count()} images")
