from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts import services
from accounts.forms import RaterCreateForm
from accounts.models import RATERS_GROUP
from accounts.permissions import admin_required

User = get_user_model()


@admin_required
def rater_list(request: HttpRequest) -> HttpResponse:
    raters = User.objects.filter(groups__name=RATERS_GROUP).select_related("rater_profile").order_by("username")
    return render(request, "accounts/rater_list.html", {"raters": raters})


@admin_required
def rater_create(request: HttpRequest) -> HttpResponse:
    form = RaterCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.rater_create(**form.cleaned_data)
        return _render_link(request, user, created=True)
    return render(request, "accounts/rater_create.html", {"form": form})


@admin_required
@require_POST
def rater_link(request: HttpRequest, pk: int) -> HttpResponse:
    """A fresh one-time link (e.g. when the first one expired or the rater forgot the password)."""
    user = get_object_or_404(User, pk=pk, groups__name=RATERS_GROUP)
    return _render_link(request, user, created=False)


def _render_link(request: HttpRequest, user, *, created: bool) -> HttpResponse:
    link = request.build_absolute_uri(services.set_password_path(user))
    if created:
        messages.success(request, f"Rater {user.username} created.")
    return render(request, "accounts/rater_link.html", {"rater": user, "link": link})


def logged_out(request: HttpRequest) -> HttpResponse:
    return redirect("accounts:login")
