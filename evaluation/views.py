from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.permissions import admin_required


@admin_required
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "evaluation/index.html")
