"""Permission matrix for every Turing page and endpoint: anonymous, rater, other rater, admin."""

import pytest
from django.urls import reverse

from imagesets.models import ImageSet
from tests.builders import make_imageset
from turing import services
from turing.models import Assignment

pytestmark = pytest.mark.django_db


@pytest.fixture
def opened(rater):
    real = make_imageset("real", n=12, seed=1)
    fake = make_imageset("fake", kind=ImageSet.Kind.SYNTHETIC, n=6, seed=2)
    study = services.study_save(
        name="perm", real_imageset=real, sources=[services.SourceSpec(fake, "g")], raters=[rater], n_real=3, n_fake=3
    )
    study = services.study_open(study=study)
    assignment = Assignment.objects.get(study=study)
    token = services.trial_current(assignment=assignment)["token"]
    return study, assignment, token


ADMIN, OWNER = "admin", "owner"


def endpoints(study, assignment, token):
    return [
        ("GET", reverse("turing:index"), ADMIN),
        ("GET", reverse("turing:create"), ADMIN),
        ("GET", reverse("turing:detail", args=[study.pk]), ADMIN),
        ("GET", reverse("turing:edit", args=[study.pk]), ADMIN),
        ("GET", reverse("turing:report", args=[study.pk]), ADMIN),
        ("GET", reverse("turing:export", args=[study.pk, "ratings.csv"]), ADMIN),
        ("GET", reverse("turing:export", args=[study.pk, "statistics.json"]), ADMIN),
        ("POST", reverse("turing:delete", args=[study.pk]), ADMIN),
        ("GET", "/api/studies/", ADMIN),
        ("GET", f"/api/studies/{study.pk}/", ADMIN),
        ("GET", f"/api/studies/{study.pk}/statistics/", ADMIN),
        ("POST", f"/api/studies/{study.pk}/open/", ADMIN),
        ("GET", reverse("turing:rate", args=[assignment.pk]), OWNER),
        ("GET", reverse("turing:trial", args=[assignment.pk]), OWNER),
        ("GET", reverse("turing:image", args=[token]), OWNER),
        ("POST", reverse("turing:pause", args=[assignment.pk]), OWNER),
        ("POST", reverse("turing:answer", args=[assignment.pk]), OWNER),
        ("POST", reverse("turing:close", args=[study.pk]), ADMIN),
    ]


@pytest.mark.parametrize("who", ["anonymous", "rater", "other_rater", "admin"])
def test_turing_permission_matrix(client, who, opened, admin_user, rater, other_rater):
    user = {"anonymous": None, "rater": rater, "other_rater": other_rater, "admin": admin_user}[who]
    if user is not None:
        client.force_login(user)
    failures = []
    for method, url, rule in endpoints(*opened):
        response = client.post(url, content_type="application/json") if method == "POST" else client.get(url)
        status = response.status_code
        granted = (rule == ADMIN and who == "admin") or (rule == OWNER and who == "rater")
        if granted:
            # Allowed: the view ran (a refused action on an open study answers 302/400 with a message).
            ok = status in (200, 302, 400)
        elif user is None:
            ok = (
                status in (401, 403)
                if url.startswith("/api/")
                else status == 302 and "/accounts/login/" in response["Location"]
            )
        elif rule == OWNER:
            ok = status == 404  # another user's assignment or image does not exist for them
        else:
            ok = status == 403
        if not ok:
            failures.append(f"{method} {url} as {who}: {status}")
    assert not failures, "\n".join(failures)
