from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.permissions import admin_required


@admin_required
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "turing/index.html")


@login_required
def my_studies(request: HttpRequest) -> HttpResponse:
    """A rater's own studies (none exist until the Turing module lands)."""
    return render(request, "turing/my_studies.html", {"studies": []})
