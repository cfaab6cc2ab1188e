"""Evaluations: validation before work, metric runs, the weights file, the cache, Dice arms, pages, API."""

import hashlib
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from evaluation import selectors, services
from evaluation.metrics import features as fid_features
from evaluation.models import Evaluation, FeatureCache
from imagesets.models import ImageSet
from tests.builders import make_imageset
from tests.evaluation.conftest import phantom_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def reference(db):
    return phantom_set("cardiac-real", seed=0, subjects=4)


@pytest.fixture
def candidate(db):
    return phantom_set("gan-a", kind="synthetic", seed=1, subjects=2, provenance={"architecture": "dcgan"})


def test_bad_input_is_refused_before_any_work(reference, candidate):
    other_size = phantom_set("other-size", kind="synthetic", seed=2, subjects=2, size=64)
    no_masks = make_imageset("no-masks", kind=ImageSet.Kind.SYNTHETIC, n=4, size=32)
    cases = [
        ({"candidates": [other_size], "metrics": ["swd"]}, "The sets differ"),
        ({"candidates": [no_masks], "metrics": ["dice"]}, "has no masks: Dice trains on image.mask pairs"),
        ({"candidates": [candidate], "metrics": ["nope"]}, "Unknown metric"),
        ({"candidates": [candidate], "metrics": []}, "Choose at least one metric"),
        ({"candidates": [], "metrics": ["swd"]}, "Choose at least one candidate"),
        ({"candidates": [candidate], "metrics": ["swd"], "params": {"bogus": 1}}, "Unknown parameter"),
    ]
    for kwargs, message in cases:
        with pytest.raises(services.EvaluationError, match=message):
            services.evaluation_create(reference=reference, enqueue=False, **kwargs)
    empty = ImageSet.objects.create(
        name="empty",
        kind="synthetic",
        status="ready",
        height=32,
        width=32,
        channels=1,
        label_names=reference.label_names,
    )
    with pytest.raises(services.EvaluationError, match="is empty"):
        services.evaluation_create(reference=reference, candidates=[empty], metrics=["swd"], enqueue=False)
    reference.images.filter(split="test").update(split="train")
    with pytest.raises(services.EvaluationError, match="has no test split"):
        services.evaluation_create(reference=reference, candidates=[candidate], metrics=["dice"], enqueue=False)
    assert not Evaluation.objects.exists()


def test_without_weights_fid_is_unavailable_and_the_rest_runs(reference, candidate, settings, tmp_path):
    settings.FID_INCEPTION_WEIGHTS = tmp_path / "missing.pth"
    [evaluation] = services.evaluation_create(
        reference=reference, candidates=[candidate], metrics=["fid", "kid", "swd"], enqueue=False
    )
    done = services.evaluation_run(evaluation_id=evaluation.pk)
    assert done.status == Evaluation.Status.DONE, done.error
    assert "fid" not in done.results and "kid" not in done.results
    assert (
        "FID unavailable" in done.results["unavailable"]["fid"]
        and "No weights file" in done.results["unavailable"]["fid"]
    )
    assert "fid_weights install" in done.results["unavailable"]["fid"]
    assert done.results["swd"]["swd_avg"] > 0
    assert done.protocol["n_reference"] == reference.images.filter(split="train").count()


def test_distribution_metrics_with_weights_and_feature_cache(reference, candidate, fake_weights):
    [first] = services.evaluation_create(
        reference=reference, candidates=[candidate], metrics=["fid", "kid", "prdc", "swd"], enqueue=False
    )
    done = services.evaluation_run(evaluation_id=first.pk)
    assert done.status == Evaluation.Status.DONE, done.error
    assert done.results["fid"]["fid"] > 0 and done.results["fid"]["biased"] is True
    assert set(done.results["prdc"]) == {"precision", "recall", "density", "coverage"}
    assert "kid_mean" in done.results["kid"] and "kid_std" in done.results["kid"]
    assert done.protocol["features"]["layer"] == "pool3" and done.protocol["features"]["reference_from_cache"] is False
    assert done.protocol["versions"]["torch"]
    assert FeatureCache.objects.count() == 1
    # A second evaluation against the same reference reuses the cached features: same FID.
    [second] = services.evaluation_create(reference=reference, candidates=[candidate], metrics=["fid"], enqueue=False)
    again = services.evaluation_run(evaluation_id=second.pk)
    assert again.protocol["features"]["reference_from_cache"] is True
    assert again.results["fid"]["fid"] == pytest.approx(done.results["fid"]["fid"], rel=1e-9)
    # Safe to run twice.
    assert services.evaluation_run(evaluation_id=second.pk) is None


def test_memorisation_flags_copies(reference, settings, tmp_path):
    settings.FID_INCEPTION_WEIGHTS = tmp_path / "none.pth"  # pixel distances only: fast
    copy = make_imageset("copies", kind=ImageSet.Kind.SYNTHETIC, n=2, size=32)
    # A "generator" that returns training images verbatim.
    for image, source in zip(copy.images.all(), reference.images.filter(split="train")[:2], strict=True):
        image.path.write_bytes(source.path.read_bytes())
    copy.provenance = {"architecture": "copier", "training_imageset_id": reference.pk, "training_splits": ["train"]}
    copy.label_names = reference.label_names
    copy.save()
    [evaluation] = services.evaluation_create(
        reference=reference, candidates=[copy], metrics=["memorisation"], enqueue=False
    )
    done = services.evaluation_run(evaluation_id=evaluation.pk)
    assert done.status == Evaluation.Status.DONE, done.error
    memo = done.results["memorisation"]
    assert memo["pixel"]["n_flagged"] == 2
    assert all(p["flagged"] and p["distance"] == 0 for p in memo["pairs"])


def test_dice_arms_and_comparison_table(reference, candidate, client, admin_user):
    created = services.evaluation_create(
        reference=reference,
        candidates=[candidate],
        metrics=["dice"],
        enqueue=False,
        params={"dice_steps": 20, "dice_base_width": 8},
    )
    assert [e.candidate for e in created] == [candidate, None]  # the real-data baseline comes along
    for evaluation in created:
        done = services.evaluation_run(evaluation_id=evaluation.pk)
        assert done.status == Evaluation.Status.DONE, done.error
        dice = done.results["dice"]
        assert set(dice["dice"]) == {"RV", "MYO", "LV"}
        assert dice["n_test"] == reference.images.filter(split="test").count()
        assert 0 <= dice["foreground_mean"] <= 1
        assert dice["hd95_mm"] is not None  # phantoms carry pixel spacing
    # The baseline is not created twice for the same budget.
    again = services.evaluation_create(
        reference=reference,
        candidates=[candidate],
        metrics=["dice"],
        enqueue=False,
        params={"dice_steps": 20, "dice_base_width": 8},
    )
    assert len(again) == 1
    [table] = selectors.comparison_tables()
    generators = [r["generator"] for r in table["rows"]]
    assert generators[0] == "real data (baseline)" and "dcgan" in generators
    assert table["classes"] == ["RV", "MYO", "LV"]
    client.force_login(admin_user)
    page = client.get(reverse("evaluation:index")).content.decode()
    assert "real data (baseline)" in page and "Dice MYO" in page and "<svg" in page
    csv_text = client.get(reverse("evaluation:export", args=["csv"])).content.decode()
    assert csv_text.splitlines()[0].startswith("reference,generator,architecture")
    assert json.loads(client.get(reverse("evaluation:export", args=["json"])).content)
    detail = client.get(reverse("evaluation:detail", args=[created[0].pk])).content.decode()
    assert "Dice per class" in detail


def test_web_form_queues_on_commit(
    client, admin_user, reference, candidate, django_capture_on_commit_callbacks, settings, tmp_path
):
    settings.FID_INCEPTION_WEIGHTS = tmp_path / "none.pth"
    client.force_login(admin_user)
    form = {
        "reference": reference.pk,
        "candidates": [candidate.pk],
        "metrics": ["swd", "fid"],
        "reference_split": "train",
        "dice_arm": "synthetic",
        "dice_steps": 20,
        "dice_seeds": "0",
    }
    page = client.get(reverse("evaluation:create")).content.decode()
    assert "FID unavailable" in page
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(reverse("evaluation:create"), form)
    assert response.status_code == 302 and len(callbacks) == 1
    evaluation = Evaluation.objects.get()
    assert evaluation.status == Evaluation.Status.DONE and evaluation.created_by == admin_user
    bad = client.post(reverse("evaluation:create"), {**form, "dice_seeds": "x"})
    assert "Seeds must be whole numbers" in bad.content.decode()


def test_fid_weights_command(settings, tmp_path, monkeypatch, capsys):
    settings.FID_INCEPTION_WEIGHTS = tmp_path / "weights" / fid_features.INCEPTION_FILENAME
    with pytest.raises(CommandError, match="not installed"):
        call_command("fid_weights", "status")
    assert "FID unavailable" in capsys.readouterr().out
    wrong = tmp_path / "wrong.pth"
    wrong.write_bytes(b"not the weights")
    with pytest.raises(CommandError, match="expected 6726825d"):
        call_command("fid_weights", "install", str(wrong))
    assert not settings.FID_INCEPTION_WEIGHTS.exists()
    # A file whose hash is the expected one is put in place (the hash is patched for the test).
    monkeypatch.setattr(fid_features, "INCEPTION_SHA256", hashlib.sha256(b"not the weights").hexdigest())
    call_command("fid_weights", "install", str(wrong))
    assert settings.FID_INCEPTION_WEIGHTS.read_bytes() == b"not the weights"
    call_command("fid_weights", "status")
    assert "SHA-256 verified" in capsys.readouterr().out


def test_evaluate_command(reference, candidate, capsys, settings, tmp_path):
    settings.FID_INCEPTION_WEIGHTS = tmp_path / "none.pth"
    call_command("evaluate", "--reference", reference.name, "--candidate", candidate.name, "--metrics", "swd,fid")
    out = json.loads(capsys.readouterr().out)
    assert out[0]["status"] == "done" and "swd" in out[0]["results"]
    with pytest.raises(CommandError, match="no image set named"):
        call_command("evaluate", "--reference", "nope", "--candidate", candidate.name)
    with pytest.raises(CommandError, match="Unknown metric"):
        call_command("evaluate", "--reference", reference.name, "--candidate", candidate.name, "--metrics", "x")


def test_api(client, admin_user, reference, candidate, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.FID_INCEPTION_WEIGHTS = tmp_path / "none.pth"
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/evaluations/",
            {"reference": reference.pk, "candidates": [candidate.pk], "metrics": ["swd"]},
            content_type="application/json",
        )
    assert response.status_code == 201, response.content
    pk = response.json()[0]["id"]
    assert client.get(f"/api/evaluations/{pk}/").json()["status"] == "done"
    bad = client.post(
        "/api/evaluations/",
        {"reference": reference.pk, "candidates": [reference.pk], "metrics": ["swd"]},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "same set" in bad.json()["detail"]
    assert client.get("/api/evaluations/comparison/").status_code == 200
    assert client.get("/api/evaluations/fid-weights/").json()["installed"] is False


@pytest.mark.parametrize("who", ["anonymous", "rater", "admin"])
def test_permission_matrix(client, who, admin_user, rater, reference, candidate):
    [evaluation] = services.evaluation_create(
        reference=reference, candidates=[candidate], metrics=["swd"], enqueue=False
    )
    if who != "anonymous":
        client.force_login(admin_user if who == "admin" else rater)
    urls = [
        reverse("evaluation:index"),
        reverse("evaluation:create"),
        reverse("evaluation:detail", args=[evaluation.pk]),
        reverse("evaluation:status", args=[evaluation.pk]),
        reverse("evaluation:export", args=["csv"]),
        "/api/evaluations/",
        f"/api/evaluations/{evaluation.pk}/",
        "/api/evaluations/comparison/",
        "/api/evaluations/fid-weights/",
    ]
    for url in urls:
        status = client.get(url).status_code
        expected = {"admin": {200}, "rater": {403}, "anonymous": {302, 401, 403}}[who]
        assert status in expected, (url, who, status)
