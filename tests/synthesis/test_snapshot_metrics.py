"""KID and FID at a run's snapshots when the FID-Inception weights are installed; SWD alone otherwise."""

import pytest
from django.urls import reverse

from evaluation import services as evaluation_services
from evaluation import training as evaluation_training
from synthesis import services
from synthesis.models import TrainingRun
from synthesis.presets import preset_overrides
from tests.evaluation.conftest import phantom_set, random_inception  # noqa: F401 (a fixture)
from tests.synthesis.test_runs import TINY

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(db):
    return phantom_set("cardiac", subjects=4, size=32)


@pytest.fixture
def inception_installed(monkeypatch, random_inception):  # noqa: F811
    """The weights 'installed': the random-weight FID-Inception stands in for the official file."""
    monkeypatch.setattr(evaluation_training, "unavailable", lambda: None)
    monkeypatch.setattr(evaluation_services, "_feature_model", lambda: random_inception)


def launch(dataset, **overrides):
    # 8 images per snapshot keep the (random) Inception cheap on one CPU thread.
    options = {**TINY, "metric_n": 8, **overrides}
    return services.training_run_launch(training_set=dataset, arch="dcgan", overrides=options, enqueue=False)


def test_without_weights_swd_alone_and_kid_is_refused_with_the_fix(dataset):
    run = launch(dataset)
    assert run.config["metric"] == "swd" and run.config["feature_metrics"] == []
    for overrides in ({"metric": "kid"}, {"feature_metrics": ["fid"]}):
        with pytest.raises(services.RunError, match="fid_weights install"):
            launch(dataset, **overrides)
    assert TrainingRun.objects.count() == 1


def test_with_weights_kid_and_fid_at_every_snapshot_and_kid_picks_the_best(
    dataset, inception_installed, client, admin_user
):
    run = launch(dataset)
    assert run.config["metric"] == "kid" and run.config["feature_metrics"] == ["kid", "fid"]
    assert "metric" not in run.overrides  # a clone decides again, on the weights it finds then
    done = services.training_run_execute(run_id=run.pk)
    assert done.status == TrainingRun.Status.DONE, done.error
    checkpoints = list(done.checkpoints.order_by("step"))
    assert len(checkpoints) == 2
    for c in checkpoints:
        assert c.kid is not None and c.fid is not None and c.fid >= 0 and c.swd > 0 and c.metric == c.kid
    best = min(checkpoints, key=lambda c: c.kid)
    assert best.is_best and done.best_metric == best.kid
    assert sum(c.is_best for c in checkpoints) == 1

    client.force_login(admin_user)
    page = client.get(reverse("synthesis:detail", args=[run.pk])).content.decode()
    assert "Best KID ×10³" in page and '<th class="num">FID</th>' in page and "biased upwards" in page
    assert f"{best.kid * 1e3:.2f}" in page
    listing = client.get(reverse("synthesis:index")).content.decode()
    assert f"KID ×10³ {best.kid * 1e3:.2f}" in listing

    # SWD chosen (the CPU preset does): no Inception work at snapshots, unless asked for.
    by_swd = launch(dataset, metric="swd")
    assert by_swd.config["metric"] == "swd" and by_swd.config["feature_metrics"] == []
    cpu = services.training_run_launch(
        training_set=dataset, arch="dcgan", overrides=preset_overrides("cpu-small", "dcgan"), enqueue=False
    )
    assert cpu.config["metric"] == "swd" and cpu.config["feature_metrics"] == []
    both = launch(dataset, metric="swd", feature_metrics=["kid", "fid"])
    assert both.config["metric"] == "swd" and both.config["feature_metrics"] == ["kid", "fid"]


def test_a_failing_snapshot_metric_is_recorded_as_missing_and_the_run_goes_on(
    dataset, inception_installed, monkeypatch
):
    calls = []
    build = evaluation_training.build

    def flaky_build(names, device):
        compute = build(names, device)

        def wrapped(fakes, reals):
            calls.append(1)
            if len(calls) == 1:
                raise ValueError("statistics contain NaN")
            return compute(fakes, reals)

        return wrapped

    monkeypatch.setattr(evaluation_training, "build", flaky_build)
    done = services.training_run_execute(run_id=launch(dataset).pk)
    assert done.status == TrainingRun.Status.DONE, done.error
    first, second = done.checkpoints.order_by("step")
    assert first.kid is None and first.fid is None and first.metric is None and first.swd > 0
    assert second.kid is not None and second.is_best and done.best_metric == second.kid


def test_weights_gone_before_the_run_starts_fails_it_with_the_reason(dataset, inception_installed, monkeypatch):
    run = launch(dataset)
    monkeypatch.setattr(evaluation_training, "unavailable", lambda: "FID unavailable: no weights file.")
    done = services.training_run_execute(run_id=run.pk)
    assert done.status == TrainingRun.Status.FAILED
    assert "KID/FID at snapshots" in done.error and "no weights file" in done.error
