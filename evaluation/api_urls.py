from django.urls import path

from evaluation import api

app_name = "evaluation-api"

urlpatterns = [
    path("", api.EvaluationList.as_view(), name="list"),
    path("<int:pk>/", api.EvaluationDetail.as_view(), name="detail"),
    path("comparison/", api.Comparison.as_view(), name="comparison"),
    path("fid-weights/", api.WeightsStatus.as_view(), name="weights"),
]
