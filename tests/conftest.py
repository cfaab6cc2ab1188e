import pytest
import torch
from django.contrib.auth.models import Group

from tests.factories import AdminFactory, RaterFactory


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tests use tiny tensors, for which one thread is many times faster than several fighting over two
    shared cores; the suite runs its files in parallel processes instead (pytest-xdist)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    """Every test gets its own MEDIA_ROOT and IMPORT_ROOTS; jobs run immediately in-process."""
    settings.MEDIA_ROOT = tmp_path / "media"
    imports = tmp_path / "imports"
    imports.mkdir()
    settings.IMPORT_ROOTS = [imports.resolve()]
    settings.TASKS = {
        "default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend", "QUEUES": ["default", "gpu"]}
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def import_root(settings):
    return settings.IMPORT_ROOTS[0]


@pytest.fixture
def admin_user(db):
    return AdminFactory()


@pytest.fixture
def rater(db):
    return RaterFactory()


@pytest.fixture
def other_rater(db):
    return RaterFactory()


@pytest.fixture
def raters_group(db):
    return Group.objects.get_or_create(name="raters")[0]
