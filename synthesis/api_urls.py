from django.urls import path

from synthesis import api

app_name = "synthesis-api"

urlpatterns = [
    path("", api.RunList.as_view(), name="list"),
    path("<int:pk>/", api.RunDetail.as_view(), name="detail"),
    path("<int:pk>/cancel/", api.RunAction.as_view(action="cancel"), name="cancel"),
    path("<int:pk>/resume/", api.RunAction.as_view(action="resume"), name="resume"),
    path("<int:pk>/sample/", api.RunSample.as_view(), name="sample"),
]
