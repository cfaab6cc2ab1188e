from django.urls import path

from imagesets import api

app_name = "imagesets-api"

urlpatterns = [
    path("", api.ImageSetList.as_view(), name="list"),
    path("<int:pk>/", api.ImageSetDetail.as_view(), name="detail"),
    path("<int:pk>/images/", api.ImageList.as_view(), name="images"),
]
