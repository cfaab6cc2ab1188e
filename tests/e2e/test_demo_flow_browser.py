"""The whole demo flow in a real browser, with tiny settings: the pipeline's products as an admin sees
them, then the demo rater rating the study it opened."""

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from demo import pipeline
from tests.demo.test_pipeline import _small_dataset
from tests.e2e.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_demo_flow_as_admin_and_rater(new_page, monkeypatch):
    call_command("seed_demo", "--no-data")
    monkeypatch.setattr(pipeline, "demo_dataset", _small_dataset)
    study = pipeline.demo_pipeline_run(kimg=0.032, n_samples=12, dice_steps=5)
    assert study is not None

    admin = new_page()
    login(admin, "admin", "admin")
    # The dashboard shows the open study with its progress and the recent work.
    expect(admin.get_by_role("heading", name="Workbench")).to_be_visible()
    running = admin.locator("#running")
    expect(running).to_contain_text(pipeline.STUDY)
    expect(running).to_contain_text("0 of 1 raters finished")
    admin.get_by_role("link", name=pipeline.RUN).first.click()
    expect(admin.get_by_role("heading", name=pipeline.RUN)).to_be_visible()
    expect(admin.locator("#latest-grid")).to_be_visible()
    expect(admin.locator("#chart-loss polyline").first).to_be_attached()
    admin.get_by_role("navigation", name="Sections").get_by_role("link", name="Evaluation").click()
    expect(admin.get_by_role("cell", name="real data (baseline)")).to_be_visible()
    expect(admin.get_by_role("cell", name="dcgan", exact=True)).to_be_visible()

    rater = new_page()
    login(rater, "rater", "rater")
    rater.get_by_role("link", name="Go to my studies").click()
    rater.get_by_role("link", name="Start").click()
    rater.get_by_role("button", name="Start").click()
    total = 2 * study.n_real
    for i in range(1, total + 1):
        expect(rater.locator("#progress-text")).to_have_text(f"Image {i} of {total}")
        expect(rater.locator("#loading")).to_be_hidden()
        rater.keyboard.press("r" if i % 2 else "f")
        rater.keyboard.press("3")
        rater.keyboard.press("Enter")
    expect(rater.get_by_role("heading", name="Thank you")).to_be_visible()

    admin.goto("/")
    expect(admin.get_by_text(f"Every rater finished '{pipeline.STUDY}'")).to_be_visible()
    admin.goto(f"/turing/{study.pk}/report/")
    expect(admin.get_by_role("heading", name="Per rater")).to_be_visible()
