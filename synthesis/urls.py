from django.urls import path

from synthesis import views

app_name = "synthesis"

urlpatterns = [
    path("", views.index, name="index"),
]
