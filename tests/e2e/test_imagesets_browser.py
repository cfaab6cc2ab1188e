import pytest
from playwright.sync_api import expect

from imagesets.models import ImageSet
from tests.e2e.conftest import login
from tests.factories import PASSWORD, AdminFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_admin_imports_a_phantom_and_browses_it(new_page, import_root):
    admin = AdminFactory()
    page = new_page()
    login(page, admin.username, PASSWORD)
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Image sets").click()
    expect(page.get_by_text("No image sets yet")).to_be_visible()
    page.get_by_role("link", name="Import a dataset").first.click()
    page.fill("#id_name", "Cardiac demo")
    page.select_option("#id_format", "phantom")
    page.fill("#id_path", "cardiac")
    page.fill("#id_size", "32")
    page.fill("#id_subjects", "3")
    page.get_by_role("button", name="Start import").click()
    # Jobs run in-process in tests, so the set is ready when the page loads.
    expect(page.get_by_role("heading", name="Cardiac demo")).to_be_visible()
    expect(page.locator(".badge-ready")).to_be_visible()
    expect(page.get_by_role("cell", name="train", exact=True)).to_be_visible()
    tiles = page.locator("#image-grid figure")
    assert tiles.count() > 10
    overlay = page.locator("#image-grid img.overlay").first
    expect(overlay).to_be_visible()
    page.get_by_label("mask overlay").uncheck()
    expect(overlay).to_be_hidden()
    page.get_by_role("link", name="test", exact=True).click()
    expect(page.locator("#image-grid figcaption").first).to_contain_text("test")
    # The image files load (admins only); they are lazy-loaded, so wait for the first one.
    page.wait_for_function("document.querySelector('#image-grid img').naturalWidth > 0")
    assert page.evaluate("document.querySelector('#image-grid img').naturalWidth") == 32


def test_import_errors_are_shown_and_nothing_is_kept(new_page, tmp_path, import_root):
    admin = AdminFactory()
    page = new_page()
    login(page, admin.username, PASSWORD)
    page.goto("/imagesets/import/")
    page.fill("#id_name", "Outside")
    page.select_option("#id_format", "acdc")
    page.fill("#id_path", str(tmp_path))
    page.get_by_role("button", name="Start import").click()
    expect(page.get_by_role("alert")).to_contain_text("outside the allowed import folders")
    # A folder inside the root that holds no ACDC data: the import fails with the reason.
    (import_root / "empty").mkdir()
    page.fill("#id_path", str(import_root / "empty"))
    page.get_by_role("button", name="Start import").click()
    expect(page.get_by_text("Import failed:")).to_be_visible()
    imageset = ImageSet.objects.get(name="Outside")
    assert imageset.status == ImageSet.Status.FAILED and imageset.images.count() == 0
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Image set 'Outside' deleted.")).to_be_visible()
    assert not ImageSet.objects.exists()
