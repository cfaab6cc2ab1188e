import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login
from tests.factories import PASSWORD, AdminFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_admin_creates_rater_who_sets_password_with_the_link(new_page):
    admin = AdminFactory()
    page = new_page()
    login(page, admin.username, PASSWORD)
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Raters").click()
    expect(page.get_by_text("No raters yet")).to_be_visible()
    page.get_by_role("link", name="New rater").click()
    page.fill("#id_username", "dr_grey")
    page.fill("#id_email", "grey@example.org")
    page.fill("#id_specialty", "abdominal radiology")
    page.fill("#id_years_experience", "8")
    page.get_by_role("button", name="Create rater").click()
    expect(page.get_by_role("heading", name="One-time link for dr_grey")).to_be_visible()
    link = page.input_value("#set-password-link")
    assert "/accounts/set-password/" in link

    # The rater opens the link in their own browser, chooses a password and is logged in.
    rater_page = new_page()
    rater_page.goto(link)
    expect(rater_page.get_by_role("heading", name="Choose your password")).to_be_visible()
    rater_page.fill("#id_new_password1", "Sunny-ventricle-2026")
    rater_page.fill("#id_new_password2", "Sunny-ventricle-2026")
    rater_page.get_by_role("button", name="Set password").click()
    expect(rater_page.get_by_role("heading", name="Your password is set")).to_be_visible()
    rater_page.get_by_role("link", name="Continue").click()
    # Raters see only their studies in the navigation.
    nav = rater_page.get_by_role("navigation", name="Sections")
    expect(nav.get_by_role("link", name="My studies")).to_be_visible()
    expect(nav.get_by_role("link", name="Image sets")).to_have_count(0)

    # The link is spent.
    again = new_page()
    again.goto(link)
    expect(again.get_by_role("heading", name="This link no longer works")).to_be_visible()

    # The admin's list shows the password as set.
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Raters").click()
    expect(page.get_by_role("row", name=re.compile("dr_grey"))).to_contain_text("set")


def test_rater_cannot_open_admin_pages(new_page):
    from tests.factories import RaterFactory

    rater = RaterFactory()
    page = new_page()
    login(page, rater.username, PASSWORD)
    response = page.goto("/imagesets/")
    assert response.status == 403
