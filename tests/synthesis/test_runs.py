"""Training runs from the app: validation before queueing, execution, cancel, resume, sampling, pages, API."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from imagesets.models import ImageSet
from synthesis import services
from synthesis.models import TrainingRun
from tests.builders import make_imageset
from tests.evaluation.conftest import phantom_set

pytestmark = pytest.mark.django_db

# Tiny and fast: a few ticks on 32x32 phantoms.
TINY = {
    "base_channels": 8,
    "batch_size": 8,
    "kimg": 0.064,
    "tick_kimg": 0.016,
    "snapshot_kimg": 0.032,
    "metric_n": 16,
    "n_grid": 4,
}


@pytest.fixture
def dataset(db):
    return phantom_set("cardiac", subjects=4, size=32)


def launch(dataset, arch="dcgan", **overrides):
    return services.training_run_launch(training_set=dataset, arch=arch, overrides={**TINY, **overrides}, enqueue=False)


def test_bad_configurations_are_refused_before_queueing(dataset):
    image_only = make_imageset("no-masks", n=6, size=32)
    importing = ImageSet.objects.create(name="busy", status=ImageSet.Status.IMPORTING)
    cases = [
        ({"training_set": dataset, "arch": "nope"}, "Unknown architecture"),
        ({"training_set": dataset, "arch": "dcgan", "overrides": {"resolution": 48}}, "power of two"),
        ({"training_set": dataset, "arch": "dcgan", "overrides": {"resolution": 64}}, "larger than the set"),
        ({"training_set": image_only, "arch": "spade"}, "has no masks"),
        ({"training_set": dataset, "arch": "dcgan", "overrides": {"batch_size": 10_000}}, "larger than the"),
        ({"training_set": importing, "arch": "dcgan"}, "still importing"),
        (
            {"training_set": dataset, "arch": "dcgan", "overrides": {"lr_gg": 1, "batch_size": 8}},
            "unknown training options",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(services.RunError, match=message):
            services.training_run_launch(enqueue=False, **kwargs)
    assert not TrainingRun.objects.exists()


def test_run_trains_checkpoints_and_samples(dataset):
    run = launch(dataset)
    assert run.config["resolution"] == 32 and run.config["n_classes"] == 4 and run.config["img_channels"] == 1
    assert run.config["lr_g"] == 2e-4  # the authors' preset, resolved and stored
    done = services.training_run_execute(run_id=run.pk)
    assert done.status == TrainingRun.Status.DONE, done.error
    assert done.kimg_done >= 0.064 and done.last_stats["loss_G"] is not None
    assert done.checkpoints.exists() and done.best_checkpoint is not None
    assert services.run_grids(done) and len(services.run_stats(done)) >= 2
    # Running the job again does nothing.
    assert services.training_run_execute(run_id=run.pk) is None
    # Sample into a synthetic set through the same writer as imports.
    imageset = services.sample_launch(
        run=done, checkpoint=done.best_checkpoint, count=6, name="samples", seed_start=10, enqueue=False
    )
    imageset = services.sample_execute(imageset_id=imageset.pk)
    assert imageset.status == ImageSet.Status.READY, imageset.error
    assert imageset.kind == ImageSet.Kind.SYNTHETIC and imageset.images.count() == 6
    assert imageset.label_names == dataset.label_names and imageset.height == 32
    assert imageset.provenance["training_imageset_id"] == dataset.pk and imageset.provenance["architecture"] == "dcgan"
    assert sorted(i.metadata["seed"] for i in imageset.images.all()) == list(range(10, 16))
    # The same seeds regenerate the same images.
    again = services.sample_launch(
        run=done, checkpoint=done.best_checkpoint, count=6, name="again", seed_start=10, enqueue=False
    )
    again = services.sample_execute(imageset_id=again.pk)
    assert [i.checksum for i in imageset.images.order_by("index")] == [
        i.checksum for i in again.images.order_by("index")
    ]


def test_spade_samples_from_training_masks(dataset):
    run = launch(dataset, arch="spade", batch_size=4, kimg=0.016, tick_kimg=0.008, snapshot_kimg=0.016)
    done = services.training_run_execute(run_id=run.pk)
    assert done.status == TrainingRun.Status.DONE, done.error
    imageset = services.sample_execute(
        imageset_id=services.sample_launch(
            run=done, checkpoint=done.latest_checkpoint, count=3, name="spade", enqueue=False
        ).pk
    )
    assert imageset.status == ImageSet.Status.READY, imageset.error
    cond_ids = [i.metadata["cond_image_id"] for i in imageset.images.all()]
    assert all(dataset.images.filter(pk=c, split="train").exists() for c in cond_ids)


def test_cancel_stops_within_a_tick_and_resume_continues(dataset):
    run = launch(dataset, kimg=1.0)
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    stopped = services.training_run_execute(run_id=run.pk)
    assert stopped.status == TrainingRun.Status.CANCELLED
    assert stopped.kimg_done <= 0.016 * 2 and stopped.latest_checkpoint is not None
    assert stopped.can_resume
    services.training_run_resume(run=stopped)
    assert TrainingRun.objects.get(pk=run.pk).status == TrainingRun.Status.QUEUED
    TrainingRun.objects.filter(pk=run.pk).update(config={**stopped.config, "kimg": 0.064})
    finished = services.training_run_execute(run_id=run.pk)
    assert finished.status == TrainingRun.Status.DONE
    # It continued from the checkpoint: the statistics log has no repeated ticks.
    steps = [s["step"] for s in services.run_stats(finished)]
    assert steps == sorted(set(steps))


def test_interrupted_run_is_requeued_and_resumes(dataset, django_capture_on_commit_callbacks):
    run = launch(dataset)
    services.training_run_execute(run_id=run.pk)
    # Simulate a worker that died mid-run: running, stale heartbeat.
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRun.Status.RUNNING,
        heartbeat_at=timezone.now() - TrainingRun.STALE_AFTER * 2,
        config={**run.config, "kimg": 0.096},
    )
    assert TrainingRun.objects.get(pk=run.pk).display_status == "interrupted"
    with django_capture_on_commit_callbacks(execute=True):
        assert services.runs_resume_interrupted() == [run.pk]
    resumed = TrainingRun.objects.get(pk=run.pk)
    assert resumed.status == TrainingRun.Status.DONE and resumed.kimg_done >= 0.096


def test_cancel_a_queued_run(dataset):
    run = launch(dataset)
    assert services.training_run_cancel(run=run).status == TrainingRun.Status.CANCELLED
    with pytest.raises(services.RunError, match="nothing to cancel"):
        services.training_run_cancel(run=run)


def test_train_and_sample_commands(dataset, capsys):
    settings_args = [f"--set={k}={json.dumps(v)}" for k, v in TINY.items() if k != "kimg"]
    call_command("train", "--dataset", "cardiac", "--arch", "lsgan", "--kimg", "0.032", "--foreground", *settings_args)
    run_id = int(capsys.readouterr().out.strip())
    assert TrainingRun.objects.get(pk=run_id).status == TrainingRun.Status.DONE
    call_command("sample", str(run_id), "--count", "4", "--name", "cli samples")
    assert ImageSet.objects.get(name="cli samples").images.count() == 4
    with pytest.raises(CommandError, match="no image set named"):
        call_command("train", "--dataset", "nope", "--arch", "dcgan", "--kimg", "1")
    with pytest.raises(CommandError, match="power of two"):
        call_command("train", "--dataset", "cardiac", "--arch", "dcgan", "--kimg", "1", "--size", "48")


def test_run_training_command_runs_a_queued_run_once(dataset, monkeypatch):
    """What each torchrun rank calls; without torchrun's environment this process is rank 0 of 1."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    run = launch(dataset, kimg=0.016, tick_kimg=0.008, snapshot_kimg=0.016)
    call_command("run_training", str(run.pk))
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.DONE and run.checkpoints.exists()
    with pytest.raises(CommandError, match="only a queued or interrupted run"):
        call_command("run_training", str(run.pk))
    # A run that fails exits non-zero, so torchrun stops the other ranks instead of leaving them waiting.
    failing = launch(dataset, kimg=0.016)
    TrainingRun.objects.filter(pk=failing.pk).update(config={**failing.config, "lr_g": -1})
    with pytest.raises(CommandError, match="failed"):
        call_command("run_training", str(failing.pk))
    with pytest.raises(CommandError, match="no run"):
        call_command("run_training", "999999")


def test_pages_and_api(client, admin_user, dataset, django_capture_on_commit_callbacks):
    client.force_login(admin_user)
    assert client.get(reverse("synthesis:index")).status_code == 200
    assert client.get(reverse("synthesis:create")).status_code == 200
    form = {
        "training_set": dataset.pk,
        "arch": "dcgan",
        "preset": "cpu-small",
        "kimg": 0.032,
        "seed": 0,
        "extra": json.dumps({k: v for k, v in TINY.items() if k != "kimg"}),
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("synthesis:create"), form)
    assert response.status_code == 302
    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.DONE and run.created_by == admin_user
    page = client.get(reverse("synthesis:detail", args=[run.pk])).content.decode()
    assert "Checkpoints and sampling" in page and "Resolved configuration" in page
    stats = client.get(reverse("synthesis:stats", args=[run.pk])).json()
    assert stats["status"] == "done" and stats["stats"] and stats["latest_grid"].endswith(".png")
    assert client.get(reverse("synthesis:grid", args=[run.pk, stats["latest_grid"]])).status_code == 200
    assert client.get(reverse("synthesis:grid", args=[run.pk, "..%2Fconfig.json"])).status_code == 404
    bad = client.post(reverse("synthesis:create"), {**form, "extra": "{not json"})
    assert "Not valid JSON" in bad.content.decode()
    no_weights = client.post(reverse("synthesis:create"), {**form, "best_by": "kid"})
    assert "fid_weights install" in no_weights.content.decode() and TrainingRun.objects.count() == 1
    assert client.get(reverse("synthesis:clone", args=[run.pk])).status_code == 200
    # Sampling from the page.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("synthesis:sample", args=[run.pk]),
            {"checkpoint": run.latest_checkpoint.pk, "count": 3, "name": "web samples", "seed_start": 0, "psi": 1.0},
        )
    assert response.status_code == 302 and ImageSet.objects.get(name="web samples").images.count() == 3
    # API.
    assert client.get("/api/runs/").json()["count"] == 1
    api_bad = client.post(
        "/api/runs/",
        {"training_set": dataset.pk, "arch": "spade", "overrides": {"resolution": 48}},
        content_type="application/json",
    )
    assert api_bad.status_code == 400 and "power of two" in api_bad.json()["detail"]
    sampled = client.post(
        f"/api/runs/{run.pk}/sample/", {"count": 2, "name": "api samples"}, content_type="application/json"
    )
    assert sampled.status_code == 201
    assert client.post(f"/api/runs/{run.pk}/cancel/").status_code == 400


@pytest.mark.parametrize("who", ["anonymous", "rater", "admin"])
def test_permission_matrix(client, who, admin_user, rater, dataset):
    run = launch(dataset)
    if who != "anonymous":
        client.force_login(admin_user if who == "admin" else rater)
    gets = [
        reverse("synthesis:index"),
        reverse("synthesis:create"),
        reverse("synthesis:detail", args=[run.pk]),
        reverse("synthesis:stats", args=[run.pk]),
        reverse("synthesis:clone", args=[run.pk]),
        "/api/runs/",
        f"/api/runs/{run.pk}/",
    ]
    posts = [
        reverse("synthesis:cancel", args=[run.pk]),
        reverse("synthesis:resume", args=[run.pk]),
        reverse("synthesis:sample", args=[run.pk]),
        f"/api/runs/{run.pk}/resume/",
    ]
    for url in gets + posts:
        status = (client.post(url) if url in posts else client.get(url)).status_code
        expected = {"admin": {200, 302, 400}, "rater": {403}, "anonymous": {302, 401, 403}}[who]
        assert status in expected, (url, who, status)
