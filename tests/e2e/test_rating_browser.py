from pathlib import Path

import pytest
from playwright.sync_api import expect

from imagesets.models import ImageSet
from tests.builders import make_imageset
from tests.e2e.conftest import login
from tests.factories import PASSWORD, AdminFactory, RaterFactory
from turing import services
from turing.models import Assignment, Rating, ResponseFormat

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def open_study(rater, **fields):
    real = make_imageset("real", n=40, seed=1, size=32)
    fake = make_imageset("fake", kind=ImageSet.Kind.SYNTHETIC, n=20, seed=2, size=32)
    study = services.study_save(
        name="Cardiac VTT",
        real_imageset=real,
        sources=[services.SourceSpec(fake, "GAN")],
        raters=[rater],
        instructions="Look for **anatomical** errors.",
        seed=5,
        **{"n_real": 10, "n_fake": 10, **fields},
    )
    return services.study_open(study=study)


def answer_with_keys(page, key: str, confidence: str | None = None) -> None:
    expect(page.locator("#loading")).to_be_hidden()
    page.keyboard.press(key)
    if confidence:
        page.keyboard.press(confidence)
    expect(page.locator("#confirm-button")).to_be_enabled()
    page.keyboard.press("Enter")


def test_rater_rates_with_keyboard_pauses_resumes_and_admin_downloads(new_page):
    rater = RaterFactory()
    study = open_study(rater, response_format=ResponseFormat.BINARY_CONFIDENCE, n_training=2)
    page = new_page()
    login(page, rater.username, PASSWORD)
    page.get_by_role("link", name="My studies").first.click()
    page.get_by_role("link", name="Start").click()
    expect(page.get_by_text("anatomical")).to_be_visible()
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#progress-text")).to_have_text("Image 1 of 22")
    expect(page.locator("#block-label")).to_be_visible()
    # Training block: feedback after each answer.
    answer_with_keys(page, "r", "3")
    expect(page.locator("#feedback")).to_contain_text("this image was")
    page.keyboard.press("Space")
    expect(page.locator("#feedback")).to_be_hidden()
    expect(page.locator("#progress-text")).to_have_text("Image 2 of 22")
    answer_with_keys(page, "f", "5")
    expect(page.locator("#feedback")).to_be_visible()
    page.keyboard.press("Space")
    for i in range(3, 11):
        expect(page.locator("#progress-text")).to_have_text(f"Image {i} of 22")
        expect(page.locator("#block-label")).to_be_hidden()
        answer_with_keys(page, "f" if i % 2 else "r", "4")
        expect(page.locator("#feedback")).to_be_hidden()
    expect(page.locator("#progress-text")).to_have_text("Image 11 of 22")
    # Window/level by dragging and reset key do not break anything.
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + 50, box["y"] + 50)
    page.mouse.down()
    page.mouse.move(box["x"] + 120, box["y"] + 90)
    page.mouse.up()
    page.keyboard.press("0")
    # Pause: the image is hidden.
    page.keyboard.press("p")
    expect(page.locator("#paused-overlay")).to_be_visible()
    expect(page.locator("#canvas")).to_be_hidden()
    assert Rating.objects.count() == 10

    # Resume from another browser: same place.
    other = new_page()
    login(other, rater.username, PASSWORD)
    other.goto("/turing/mine/")
    expect(other.get_by_text("10 / 22")).to_be_visible()
    other.get_by_role("link", name="Continue").click()
    other.get_by_role("button", name="Continue").click()
    for i in range(11, 23):
        expect(other.locator("#progress-text")).to_have_text(f"Image {i} of 22")
        answer_with_keys(other, "r" if i % 3 else "f", "2")
    expect(other.get_by_role("heading", name="Thank you")).to_be_visible()
    assert Rating.objects.count() == 22
    assert Assignment.objects.get(study=study).is_finished
    positions = list(Rating.objects.order_by("position").values_list("position", flat=True))
    assert positions == list(range(22))

    # The admin reads the report and downloads the ratings.
    admin = AdminFactory()
    admin_page = new_page()
    login(admin_page, admin.username, PASSWORD)
    admin_page.goto(f"/turing/{study.pk}/report/")
    expect(admin_page.get_by_role("heading", name="Per rater")).to_be_visible()
    expect(admin_page.locator("svg").first).to_be_visible()
    with admin_page.expect_download() as download_info:
        admin_page.get_by_role("link", name="ratings.csv").click()
    lines = Path(download_info.value.path()).read_text().splitlines()
    assert len(lines) == 23 and lines[0].startswith("rater,image_token")


def test_six_point_scale_with_buttons(new_page):
    rater = RaterFactory()
    open_study(rater, response_format=ResponseFormat.SIX_POINT, n_real=2, n_fake=2)
    page = new_page()
    login(page, rater.username, PASSWORD)
    page.goto("/turing/mine/")
    page.get_by_role("link", name="Start").click()
    page.get_by_role("button", name="Start").click()
    for i, level in enumerate(("1", "6", "3", "4"), start=1):
        expect(page.locator("#progress-text")).to_have_text(f"Image {i} of 4")
        expect(page.locator("#loading")).to_be_hidden()
        page.keyboard.press(level)
        page.get_by_role("button", name="Confirm (Enter)").click()
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    assert sorted(Rating.objects.values_list("scale", flat=True)) == [1, 3, 4, 6]
