"""Turing studies: definition checks, parity, opening, rating (idempotent, ordered), exports."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.management import call_command
from django.urls import reverse

from imagesets.models import ImageSet
from tests.builders import make_imageset
from tests.factories import RaterFactory
from turing import services
from turing.models import Assignment, Rating, Study, StudyImage
from turing.ordering import longest_run, rater_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def sets(db):
    real = make_imageset("real", n=30, seed=1)
    gan_a = make_imageset("gan-a", kind=ImageSet.Kind.SYNTHETIC, n=12, seed=2, provenance={"architecture": "dcgan"})
    gan_b = make_imageset("gan-b", kind=ImageSet.Kind.SYNTHETIC, n=12, seed=3, provenance={"architecture": "stylegan"})
    return real, gan_a, gan_b


def define(sets, raters, **overrides) -> Study:
    real, gan_a, gan_b = sets
    fields = {"n_real": 8, "n_fake": 8, "seed": 7, **overrides}
    return services.study_save(
        name=fields.pop("name", "study"),
        real_imageset=real,
        sources=[services.SourceSpec(gan_a, "DCGAN"), services.SourceSpec(gan_b, "StyleGAN")],
        raters=raters,
        **fields,
    )


def test_open_freezes_draws_and_reencodes(sets, rater, other_rater):
    study = services.study_open(study=define(sets, [rater, other_rater], n_training=4))
    assert study.status == Study.Status.OPEN
    images = StudyImage.objects.filter(study=study)
    test = images.filter(block="test")
    assert test.filter(is_generated=False).count() == 8
    assert (
        sorted(test.filter(is_generated=True).values_list("generator", flat=True)) == ["DCGAN"] * 4 + ["StyleGAN"] * 4
    )
    assert images.filter(block="training").count() == 4
    # Real images come from the held-out split only, and training images are separate from test images.
    assert set(test.filter(is_generated=False).values_list("image__split", flat=True)) == {"test"}
    assert not set(images.filter(block="training").values_list("image", flat=True)) & set(
        test.values_list("image", flat=True)
    )
    # One transport size for every image: 16 x 16 x 2 bytes.
    assert {si.blob_path.stat().st_size for si in images} == {512}
    assert all(len(si.token) == 32 for si in images)
    assert study.frozen_definition["transport"]["bytes"] == 512
    a, b = Assignment.objects.filter(study=study).order_by("pseudonym")
    assert a.order[:4] != [] and set(a.order) == set(b.order) and a.order != b.order
    # Training first, then test trials without long runs of one class.
    training_ids = set(images.filter(block="training").values_list("pk", flat=True))
    assert set(a.order[:4]) == training_ids
    truth = dict(images.values_list("pk", "is_generated"))
    assert longest_run([truth[pk] for pk in a.order[4:]]) <= 3
    with pytest.raises(services.StudyError, match="only a draft"):
        services.study_open(study=study)
    with pytest.raises(services.StudyError, match="frozen"):
        define(sets, [rater], name="study") if False else services.study_save(
            study=study, name="study", real_imageset=sets[0], sources=[], raters=[]
        )


def test_definition_errors_are_clear(sets, rater, admin_user):
    real, gan_a, _ = sets
    with pytest.raises(services.StudyError, match="has 15 images; the study needs 40"):
        define(sets, [rater], n_real=40)
    with pytest.raises(services.StudyError, match="not in the raters group"):
        define(sets, [admin_user])
    with pytest.raises(services.StudyError, match="generated images must come from synthetic sets"):
        services.study_save(
            name="x", real_imageset=real, sources=[services.SourceSpec(real, "oops")], raters=[], n_real=1, n_fake=1
        )
    assert not Study.objects.exists()


def test_real_images_used_to_train_a_gan_are_refused(sets, rater):
    real, gan_a, gan_b = sets
    gan_a.provenance = {"architecture": "dcgan", "training_imageset_id": real.pk, "training_splits": ["train", "test"]}
    gan_a.save()
    with pytest.raises(services.StudyError, match="was used to train gan-a"):
        define(sets, [rater])


def test_parity_check_refuses_to_open_with_a_report(sets, rater):
    real, gan_a, gan_b = sets
    make_imageset("gan-8bit", kind=ImageSet.Kind.SYNTHETIC, n=12, seed=4, eight_bit=True)
    study = services.study_save(
        name="bad",
        real_imageset=real,
        raters=[rater],
        n_real=4,
        n_fake=4,
        sources=[services.SourceSpec(ImageSet.objects.get(name="gan-8bit"), "8bit")],
    )
    with pytest.raises(services.StudyError, match="bit depth"):
        services.study_open(study=study)
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT
    assert not study.parity_report["ok"]
    assert not StudyImage.objects.exists() and not study.folder.exists()


def test_rater_order_is_seeded_and_breaks_runs():
    items = [(i, i < 50) for i in range(100)]
    a = rater_order(training_ids=[], test_items=items, seed=1)
    assert a == rater_order(training_ids=[], test_items=items, seed=1)
    assert a != rater_order(training_ids=[], test_items=items, seed=2)
    truth = dict(items)
    assert longest_run([truth[i] for i in a]) <= 3
    # Impossible balance: the run limit is kept as far as it can be.
    lopsided = [(i, i < 2) for i in range(10)]
    assert sorted(rater_order(training_ids=[], test_items=lopsided, seed=0)) == list(range(10))


def rate_all(client, assignment, answer_for):
    """Rate every trial through the HTTP endpoints; answer_for(state) -> payload."""
    url = reverse("turing:trial", args=[assignment.pk])
    while True:
        state = client.get(url).json()
        if state["done"]:
            return state
        assert client.get(reverse("turing:image", args=[state["token"]])).status_code == 200
        response = client.post(
            reverse("turing:answer", args=[assignment.pk]),
            data=json.dumps({"token": state["token"], **answer_for(state)}),
            content_type="application/json",
        )
        assert response.status_code == 200, response.content


def test_rating_flow_idempotent_and_in_order(client, sets, rater):
    study = services.study_open(study=define(sets, [rater], n_training=2))
    assignment = Assignment.objects.get(study=study)
    client.force_login(rater)
    state = client.get(reverse("turing:trial", args=[assignment.pk])).json()
    assert state["training"] is True and state["answered"] == 0 and state["total"] == 18
    answer_url = reverse("turing:answer", args=[assignment.pk])
    payload = json.dumps({"token": state["token"], "call": "real"})
    first = client.post(answer_url, payload, content_type="application/json").json()
    assert first["feedback"]["truth"] in ("real", "generated")  # training block: feedback
    # A repeated submit (double click, retry) changes nothing.
    again = client.post(answer_url, payload, content_type="application/json")
    assert again.status_code == 200 and Rating.objects.count() == 1
    # An answer for an image that is not the current one is refused.
    other = StudyImage.objects.filter(study=study).exclude(pk__in=assignment.order[:2]).first()
    refused = client.post(
        answer_url, json.dumps({"token": other.token, "call": "real"}), content_type="application/json"
    )
    assert refused.status_code == 409 and Rating.objects.count() == 1
    # Bad answers are refused with a message.
    current = client.get(reverse("turing:trial", args=[assignment.pk])).json()
    bad = client.post(
        answer_url, json.dumps({"token": current["token"], "call": "maybe"}), content_type="application/json"
    )
    assert bad.status_code == 400 and "Answer 'real' or 'generated'" in bad.json()["error"]
    rate_all(client, Assignment.objects.get(pk=assignment.pk), lambda s: {"call": "generated"})
    assignment.refresh_from_db()
    assert assignment.is_finished and Rating.objects.count() == 18
    ratings = list(Rating.objects.order_by("position"))
    assert [r.position for r in ratings] == list(range(18))
    assert all(r.answered_at >= r.shown_at for r in ratings)
    # Test-block answers carry no feedback.
    assert Rating.objects.filter(is_training=False).count() == 16


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_submits_store_one_rating(sets, rater):
    from django.db import connection

    if connection.vendor != "postgresql":
        # SQLite's in-memory test database cannot be shared by threads; CI runs this on PostgreSQL.
        pytest.skip("concurrency is tested on PostgreSQL")
    study = services.study_open(study=define(sets, [rater]))
    assignment = Assignment.objects.get(study=study)
    state = services.trial_current(assignment=assignment)

    def submit(_):
        from django.db import connection

        try:
            return services.rating_submit(assignment=assignment, token=state["token"], call="real")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(submit, range(8)))
    assert Rating.objects.filter(assignment=assignment).count() == 1
    assignment.refresh_from_db()
    assert assignment.position == 1


def test_time_limit_is_enforced_on_the_server(sets, rater):
    from datetime import timedelta

    from django.utils import timezone

    study = services.study_open(study=define(sets, [rater], time_limit_s=5))
    assignment = Assignment.objects.get(study=study)
    state = services.trial_current(assignment=assignment)
    Assignment.objects.filter(pk=assignment.pk).update(current_shown_at=timezone.now() - timedelta(seconds=30))
    services.rating_submit(assignment=assignment, token=state["token"], call="generated")
    rating = Rating.objects.get()
    assert rating.timed_out and rating.called_generated is None and rating.duration_ms >= 30000


def test_closed_study_refuses_answers(sets, rater):
    study = services.study_open(study=define(sets, [rater]))
    assignment = Assignment.objects.get(study=study)
    state = services.trial_current(assignment=assignment)
    services.study_close(study=study)
    with pytest.raises(services.StudyError, match="closed"):
        services.rating_submit(assignment=assignment, token=state["token"], call="real")


def test_create_and_export_commands(sets, rater, tmp_path, capsys):
    call_command(
        "create_study",
        "--name",
        "cli",
        "--real",
        "real",
        "--fake",
        "gan-a,gan-b",
        "--n-real",
        "6",
        "--n-fake",
        "6",
        "--raters",
        rater.username,
        "--format",
        "binary_confidence",
        "--open",
    )
    study = Study.objects.get(name="cli")
    assert capsys.readouterr().out.strip() == str(study.pk)
    assert study.status == Study.Status.OPEN
    assert sorted(study.sources.values_list("generator", flat=True)) == ["dcgan", "stylegan"]
    assignment = Assignment.objects.get(study=study)
    for _ in range(12):
        state = services.trial_current(assignment=assignment)
        services.rating_submit(assignment=assignment, token=state["token"], call="generated", confidence=3)
    call_command("export_study", "cli", "--out", str(tmp_path))
    files = {p.name for p in tmp_path.iterdir()}
    assert {
        "cli-ratings.csv",
        "cli-statistics.json",
        "cli-statistics.csv",
        "cli-imrmc.csv",
        "cli-mrmcaov.csv",
        "cli-design.json",
    } <= files
    ratings_csv = (tmp_path / "cli-ratings.csv").read_text().splitlines()
    assert len(ratings_csv) == 13 and ratings_csv[0].startswith("rater,image_token,block,truth,generator")
    assert rater.username not in (tmp_path / "cli-ratings.csv").read_text()
    stats = json.loads((tmp_path / "cli-statistics.json").read_text())
    assert stats is not None
    imrmc = (tmp_path / "cli-imrmc.csv").read_text()
    assert "BEGIN DATA:" in imrmc and imrmc.count("\n-1,") == 12
    with pytest.raises(Exception, match="unknown rater"):
        call_command(
            "create_study",
            "--name",
            "x",
            "--real",
            "real",
            "--fake",
            "gan-a",
            "--n-real",
            "2",
            "--n-fake",
            "2",
            "--raters",
            "nobody",
        )


def test_api_creates_opens_and_reports(client, admin_user, sets, rater):
    real, gan_a, gan_b = sets
    client.force_login(admin_user)
    body = {
        "name": "api",
        "real_imageset": real.pk,
        "n_real": 4,
        "n_fake": 4,
        "raters": [rater.username],
        "sources": [{"imageset": gan_a.pk, "generator": "DCGAN"}],
        "response_format": "six_point",
    }
    created = client.post("/api/studies/", body, content_type="application/json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    bad = client.post("/api/studies/", {**body, "name": "api2", "n_real": 400}, content_type="application/json")
    assert bad.status_code == 400 and "the study needs 400" in bad.json()["detail"]
    opened = client.post(f"/api/studies/{pk}/open/")
    assert opened.status_code == 200 and opened.json()["status"] == "open"
    assert client.patch(f"/api/studies/{pk}/", {"n_real": 5}, content_type="application/json").status_code == 400
    assert client.get(f"/api/studies/{pk}/statistics/").status_code == 200


def test_admin_pages_render(client, admin_user, sets, rater):
    study = define(sets, [rater])
    client.force_login(admin_user)
    assert client.get(reverse("turing:index")).status_code == 200
    assert client.get(reverse("turing:create")).status_code == 200
    assert client.get(reverse("turing:edit", args=[study.pk])).status_code == 200
    response = client.post(reverse("turing:open", args=[study.pk]))
    assert response.status_code == 302
    page = client.get(reverse("turing:detail", args=[study.pk])).content.decode()
    assert "R01" in page and "passed" in page
    assert client.get(reverse("turing:report", args=[study.pk])).status_code == 200
    csv = client.get(reverse("turing:export", args=[study.pk, "ratings.csv"]))
    assert csv.status_code == 200 and csv["Content-Disposition"].startswith("attachment")


def test_rater_sees_own_studies_only(client, sets, rater, other_rater):
    study = services.study_open(study=define(sets, [rater]))
    client.force_login(other_rater)
    assert "No studies are assigned to you" in client.get(reverse("turing:my_studies")).content.decode()
    mine = Assignment.objects.get(study=study)
    assert client.get(reverse("turing:rate", args=[mine.pk])).status_code == 404
    assert client.get(reverse("turing:trial", args=[mine.pk])).status_code == 404
    client.force_login(rater)
    page = client.get(reverse("turing:my_studies")).content.decode()
    assert "study" in page and reverse("turing:rate", args=[mine.pk]) in page
    # Only the current image is served, and only to its rater.
    state = client.get(reverse("turing:trial", args=[mine.pk])).json()
    later = StudyImage.objects.get(pk=mine.order[1])
    assert client.get(reverse("turing:image", args=[later.token])).status_code == 404
    client.force_login(other_rater)
    assert client.get(reverse("turing:image", args=[state["token"]])).status_code == 404


def test_new_rater_is_usable(db):
    assert RaterFactory().groups.filter(name="raters").exists()
