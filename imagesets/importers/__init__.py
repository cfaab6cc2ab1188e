"""Registry of dataset importers: format name -> open_dataset function."""

from collections.abc import Callable, Iterator
from importlib import import_module
from pathlib import Path

from imagesets.importers.base import DatasetError, DatasetHeader, ImportOptions, ProgressFn, Sample

OpenDataset = Callable[[Path, ImportOptions, ProgressFn | None], tuple[DatasetHeader, Iterator[Sample]]]

FORMATS: dict[str, str] = {
    "acdc": "ACDC cardiac cine-MRI (NIfTI, training/ and testing/ patient folders)",
    "sliver07": "SLiver07 liver CT (MetaImage liver-origNNN.mhd with liver-segNNN.mhd)",
    "idrid": "IDRiD segmentation part (RGB fundus JPGs with lesion TIFs)",
    "folder": "A folder of PNG/JPG/TIF images, optional masks/ folder matched by file name",
    "phantom": "Procedural demo phantoms: PATH is 'cardiac' or 'liver'",
}


def get_importer(fmt: str) -> OpenDataset:
    if fmt not in FORMATS:
        raise DatasetError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    module = import_module("imagesets.phantoms" if fmt == "phantom" else f"imagesets.importers.{fmt}")
    return module.open_dataset


__all__ = ["FORMATS", "DatasetError", "DatasetHeader", "ImportOptions", "Sample", "get_importer"]
