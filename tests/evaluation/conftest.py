import numpy as np
import pytest

from evaluation import services
from evaluation.metrics.features import build_random_fid_inception
from imagesets.importers import ImportOptions
from imagesets.models import ImageSet
from imagesets.services import imageset_import_create, imageset_import_run


def phantom_set(
    name: str, *, kind: str = "real", seed: int = 0, subjects: int = 4, size: int = 32, provenance: dict | None = None
) -> ImageSet:
    created = imageset_import_create(
        name=name,
        fmt="phantom",
        source="cardiac",
        enqueue=False,
        options=ImportOptions(size=size, subjects=subjects, seed=seed, skip_empty=True),
    )
    imageset = imageset_import_run(imageset_id=created.pk)
    assert imageset.status == ImageSet.Status.READY, imageset.error
    ImageSet.objects.filter(pk=imageset.pk).update(kind=kind, provenance=provenance or {})
    imageset.refresh_from_db()
    return imageset


@pytest.fixture(scope="session")
def random_inception():
    """The FID-Inception architecture with random weights, BatchNorm recalibrated on noise images."""
    rng = np.random.default_rng(0)
    return build_random_fid_inception(rng.random((8, 1, 32, 32), dtype=np.float32))


@pytest.fixture
def fake_weights(monkeypatch, random_inception):
    monkeypatch.setattr(services, "_feature_model", lambda: random_inception)
    return random_inception
