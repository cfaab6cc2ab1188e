from django.core.management.base import BaseCommand, CommandError

from imagesets.importers import FORMATS, ImportOptions
from imagesets.models import ImageSet
from imagesets.services import ImportRequestError, imageset_delete, imageset_import_create, imageset_import_run


class Command(BaseCommand):
    help = "Import a dataset as a new real image set, synchronously. Prints the new set's id."

    def add_arguments(self, parser):
        parser.add_argument("format", choices=sorted(FORMATS), help="dataset format")
        parser.add_argument("path", help="folder to import (for phantoms: 'cardiac' or 'liver')")
        parser.add_argument("--name", required=True, help="name of the new image set (unique)")
        parser.add_argument("--size", type=int, default=128, help="canonical size N for N x N images (default 128)")
        parser.add_argument("--skip-empty", action="store_true", help="drop slices whose mask has no foreground")
        parser.add_argument(
            "--split-seed",
            type=int,
            default=None,
            help="re-split subjects into train/val/test with this seed (default: the dataset's own split)",
        )
        parser.add_argument("--val-fraction", type=float, default=0.1)
        parser.add_argument("--test-fraction", type=float, default=0.2)
        parser.add_argument("--subjects", type=int, default=24, help="phantoms: number of subjects")
        parser.add_argument("--seed", type=int, default=0, help="phantoms: random seed")
        parser.add_argument("--description", default="")

    def handle(self, *args, **opts):
        options = ImportOptions(
            size=opts["size"],
            skip_empty=opts["skip_empty"],
            split_seed=opts["split_seed"],
            val_fraction=opts["val_fraction"],
            test_fraction=opts["test_fraction"],
            subjects=opts["subjects"],
            seed=opts["seed"],
        )
        try:
            imageset = imageset_import_create(
                name=opts["name"],
                fmt=opts["format"],
                source=opts["path"],
                options=options,
                description=opts["description"],
                restrict_to_import_roots=False,
                enqueue=False,
            )
        except ImportRequestError as exc:
            raise CommandError(str(exc)) from None
        verbose = opts["verbosity"] >= 2

        def echo(fraction: float, message: str) -> None:
            if verbose:
                self.stderr.write(f"[{fraction:5.1%}] {message}")

        imageset = imageset_import_run(imageset_id=imageset.pk, echo=echo)
        if imageset.status != ImageSet.Status.READY:
            error = imageset.error
            # The command leaves nothing behind on failure, not even the failed record.
            imageset_delete(imageset=imageset)
            raise CommandError(f"import failed: {error}")
        count = imageset.images.count()
        self.stderr.write(
            f"Imported {count} images into '{imageset.name}' ({imageset.width}x{imageset.height}, "
            f"{imageset.channels} channel(s), labels: {imageset.label_names or 'none'})"
        )
        self.stdout.write(str(imageset.pk))
