from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from config.dashboard import dashboard_context


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_staff:
        return render(request, "home.html", dashboard_context())
    return render(request, "home.html")
