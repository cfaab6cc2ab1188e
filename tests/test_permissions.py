"""Permission matrix: every page and endpoint, for anonymous, rater, other rater and admin."""

import pytest
from django.urls import reverse

from imagesets import services
from imagesets.importers import ImportOptions
from tests.imagesets.fake_importer import make_open_dataset

pytestmark = pytest.mark.django_db

ADMIN_ONLY = "admin-only"
ANY_USER = "any-user"
PUBLIC = "public"


@pytest.fixture
def imageset(import_root, monkeypatch):
    monkeypatch.setattr(services, "get_importer", lambda fmt: make_open_dataset(n=2))
    created = services.imageset_import_create(
        name="perm", fmt="folder", source=str(import_root), options=ImportOptions(size=16), enqueue=False
    )
    return services.imageset_import_run(imageset_id=created.pk)


def endpoints(imageset) -> list[tuple[str, str, str]]:
    image = imageset.images.first()
    return [
        ("GET", reverse("home"), ANY_USER),
        ("GET", reverse("accounts:login"), PUBLIC),
        ("GET", reverse("accounts:password_reset"), PUBLIC),
        ("GET", reverse("accounts:password_change"), ANY_USER),
        ("GET", reverse("accounts:rater_list"), ADMIN_ONLY),
        ("GET", reverse("accounts:rater_create"), ADMIN_ONLY),
        ("POST", reverse("accounts:rater_link", args=[0]), ADMIN_ONLY),
        ("GET", reverse("imagesets:list"), ADMIN_ONLY),
        ("GET", reverse("imagesets:import"), ADMIN_ONLY),
        ("GET", reverse("imagesets:detail", args=[imageset.pk]), ADMIN_ONLY),
        ("GET", reverse("imagesets:status", args=[imageset.pk]), ADMIN_ONLY),
        ("GET", reverse("imagesets:image_file", args=[image.pk]), ADMIN_ONLY),
        ("GET", reverse("imagesets:image_overlay", args=[image.pk]), ADMIN_ONLY),
        ("GET", reverse("synthesis:index"), ADMIN_ONLY),
        ("GET", reverse("evaluation:index"), ADMIN_ONLY),
        ("GET", reverse("turing:index"), ADMIN_ONLY),
        ("GET", reverse("turing:my_studies"), ANY_USER),
        ("GET", "/api/imagesets/", ADMIN_ONLY),
        ("GET", f"/api/imagesets/{imageset.pk}/", ADMIN_ONLY),
        ("GET", f"/api/imagesets/{imageset.pk}/images/", ADMIN_ONLY),
        ("GET", "/api/schema/", ADMIN_ONLY),
        ("GET", "/api/docs/", ADMIN_ONLY),
        # Last: it deletes the set the rows above read.
        ("POST", reverse("imagesets:delete", args=[imageset.pk]), ADMIN_ONLY),
    ]


@pytest.mark.parametrize("who", ["anonymous", "rater", "other_rater", "admin"])
def test_permission_matrix(client, who, imageset, admin_user, rater, other_rater):
    user = {"anonymous": None, "rater": rater, "other_rater": other_rater, "admin": admin_user}[who]
    if user is not None:
        client.force_login(user)
    failures = []
    for method, url, rule in endpoints(imageset):
        response = client.post(url) if method == "POST" else client.get(url)
        status = response.status_code
        is_api = url.startswith("/api/")
        if rule == PUBLIC or (rule == ANY_USER and user is not None) or (rule == ADMIN_ONLY and who == "admin"):
            ok = status in (200, 302, 404) if method == "POST" or "rater_link" in url else status == 200
        elif user is None:
            # Pages send anonymous users to the login page; the API answers 401/403.
            ok = status in (401, 403) if is_api else (status == 302 and "/accounts/login/" in response["Location"])
        else:
            ok = status == 403
        if not ok:
            failures.append(f"{method} {url} as {who}: {status}")
    assert not failures, "\n".join(failures)
