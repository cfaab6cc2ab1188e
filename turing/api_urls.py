from django.urls import path

from turing import api

app_name = "turing-api"

urlpatterns = [
    path("", api.StudyList.as_view(), name="list"),
    path("<int:pk>/", api.StudyDetail.as_view(), name="detail"),
    path("<int:pk>/open/", api.StudyAction.as_view(action="open"), name="open"),
    path("<int:pk>/close/", api.StudyAction.as_view(action="close"), name="close"),
    path("<int:pk>/statistics/", api.StudyStatistics.as_view(), name="statistics"),
]
