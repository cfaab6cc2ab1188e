from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include("accounts.urls")),
    path("imagesets/", include("imagesets.urls")),
    path("synthesis/", include("synthesis.urls")),
    path("evaluation/", include("evaluation.urls")),
    path("turing/", include("turing.urls")),
    path("api/imagesets/", include("imagesets.api_urls")),
    path("api/runs/", include("synthesis.api_urls")),
    path("api/studies/", include("turing.api_urls")),
    path("api/evaluations/", include("evaluation.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("django-admin/", admin.site.urls),
]
