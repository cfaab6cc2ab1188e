import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from accounts.models import RaterProfile, is_rater
from tests.factories import PASSWORD

User = get_user_model()
pytestmark = pytest.mark.django_db


def create_rater(client, admin_user, **extra) -> tuple[User, str]:
    client.force_login(admin_user)
    data = {
        "username": "dr_house",
        "email": "house@example.org",
        "specialty": "cardiac radiology",
        "years_experience": 12,
        **extra,
    }
    response = client.post(reverse("accounts:rater_create"), data)
    assert response.status_code == 200
    link = re.search(r'value="(http://testserver/accounts/set-password/[^"]+)"', response.content.decode()).group(1)
    client.logout()
    return User.objects.get(username=data["username"]), link


def test_admin_creates_rater_with_profile_and_no_password(client, admin_user):
    rater, link = create_rater(client, admin_user)
    assert is_rater(rater)
    assert not rater.is_staff
    assert not rater.has_usable_password()
    profile = RaterProfile.objects.get(user=rater)
    assert (profile.specialty, profile.years_experience) == ("cardiac radiology", 12)
    assert "/accounts/set-password/" in link


def test_duplicate_username_is_refused(client, admin_user):
    create_rater(client, admin_user)
    client.force_login(admin_user)
    response = client.post(reverse("accounts:rater_create"), {"username": "DR_HOUSE"})
    assert response.status_code == 200
    assert "This username is taken." in response.content.decode()
    assert User.objects.filter(username__iexact="dr_house").count() == 1


def test_one_time_link_sets_password_once(client, admin_user):
    rater, link = create_rater(client, admin_user)
    path = link.removeprefix("http://testserver")
    # Django redirects the token URL to a session-bound URL before showing the form.
    form_page = client.get(path, follow=True)
    assert "Choose your password" in form_page.content.decode()
    set_url = form_page.redirect_chain[-1][0]
    response = client.post(set_url, {"new_password1": "A-long-passphrase-42", "new_password2": "A-long-passphrase-42"})
    assert response.status_code == 302
    rater.refresh_from_db()
    assert rater.check_password("A-long-passphrase-42")
    # Logged in straight away, and the link is spent.
    assert client.get(reverse("home")).status_code == 200
    client.logout()
    again = client.get(path, follow=True)
    assert "This link no longer works" in again.content.decode()


def test_admin_can_issue_a_new_link(client, admin_user):
    rater, old_link = create_rater(client, admin_user)
    client.force_login(admin_user)
    response = client.post(reverse("accounts:rater_link", args=[rater.pk]))
    assert response.status_code == 200
    assert "/accounts/set-password/" in response.content.decode()


def test_login_logout_and_password_change(client, rater):
    response = client.post(reverse("accounts:login"), {"username": rater.username, "password": PASSWORD})
    assert response.status_code == 302
    response = client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": "Another-pass-phrase-9", "new_password2": "Another-pass-phrase-9"},
    )
    assert response.status_code == 302
    rater.refresh_from_db()
    assert rater.check_password("Another-pass-phrase-9")
    client.post(reverse("accounts:logout"))
    assert client.get(reverse("home")).status_code == 302


def test_wrong_password_shows_error(client, rater):
    response = client.post(reverse("accounts:login"), {"username": rater.username, "password": "nope"})
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()


def test_password_reset_sends_mail(client, rater, mailoutbox):
    response = client.post(reverse("accounts:password_reset"), {"email": rater.email})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    assert "/accounts/set-password/" in mailoutbox[0].body


def test_navigation_by_role(client, admin_user, rater):
    client.force_login(admin_user)
    page = client.get(reverse("home")).content.decode()
    for section in ("Image sets", "Synthesis", "Evaluation", "Turing tests", "Raters"):
        assert f">{section}</a>" in page
    client.force_login(rater)
    page = client.get(reverse("home")).content.decode()
    assert ">My studies</a>" in page
    for section in ("Image sets", "Synthesis", "Evaluation", "Raters"):
        assert f">{section}</a>" not in page


def test_seed_demo_accounts_are_idempotent(db):
    from django.core.management import call_command

    call_command("seed_demo", "--no-data")
    call_command("seed_demo", "--no-data")
    assert User.objects.filter(username="admin", is_staff=True).count() == 1
    rater = User.objects.get(username="rater")
    assert is_rater(rater) and rater.check_password("rater")
