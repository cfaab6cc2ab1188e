from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from imagesets.selectors import imageset_counts, imageset_list


@login_required
def home(request: HttpRequest) -> HttpResponse:
    context = {}
    if request.user.is_staff:
        context = {"imageset_counts": imageset_counts(), "recent_imports": imageset_list()[:8]}
    return render(request, "home.html", context)
