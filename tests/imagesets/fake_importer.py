"""A tiny in-memory importer for service tests that must not depend on a real format."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from imagesets.importers.base import DatasetError, DatasetHeader, ImportOptions, Sample


def make_open_dataset(n: int = 6, *, fail_at: int | None = None, bad_label_at: int | None = None):
    def open_dataset(path: Path, options: ImportOptions, progress=None) -> tuple[DatasetHeader, Iterator[Sample]]:
        header = DatasetHeader(
            modality="other", channels=1, label_names=["background", "thing"], square="pad", preprocessing={}
        )

        def samples() -> Iterator[Sample]:
            for i in range(n):
                if progress:
                    progress(i / n, f"sample {i}")
                if i == fail_at:
                    raise DatasetError(f"sample {i}: the file is truncated")
                image = np.linspace(0, 1, 20 * 30, dtype=np.float32).reshape(20, 30)
                mask = np.zeros((20, 30), np.uint8)
                mask[5:10, 5 + i : 15 + i] = 1
                if i == bad_label_at:
                    mask[0, 0] = 9
                yield Sample(
                    subject=f"s{i // 2}",
                    split="test" if i < 2 else "train",
                    image=image,
                    mask=mask,
                    slice_index=i % 2,
                    metadata={"pixel_spacing_mm": [1.0, 1.0]},
                )

        return header, samples()

    return open_dataset
