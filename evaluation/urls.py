from django.urls import path

from evaluation import views

app_name = "evaluation"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.evaluation_create, name="create"),
    path("<int:pk>/", views.evaluation_detail, name="detail"),
    path("<int:pk>/status.json", views.evaluation_status, name="status"),
    path("comparison.<str:fmt>", views.comparison_export, name="export"),
]
