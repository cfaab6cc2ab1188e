from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import RATERS_GROUP, RaterProfile

User = get_user_model()


@transaction.atomic
def rater_create(
    *,
    username: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    specialty: str = "",
    years_experience: int | None = None,
) -> "User":
    """A rater account without a usable password: the rater sets one through a one-time link."""
    user = User(username=username, email=email, first_name=first_name, last_name=last_name)
    user.set_unusable_password()
    user.save()
    user.groups.add(Group.objects.get_or_create(name=RATERS_GROUP)[0])
    RaterProfile.objects.create(user=user, specialty=specialty, years_experience=years_experience)
    return user


def set_password_path(user) -> str:
    """A path that lets `user` set a password once.

    Django's token hashes the password and last login, so it stops working as soon as the
    password is set (one-time) and expires after PASSWORD_RESET_TIMEOUT.
    """
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return reverse("accounts:set_password", kwargs={"uidb64": uidb64, "token": token})
