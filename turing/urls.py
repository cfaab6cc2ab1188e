from django.urls import path

from turing import views

app_name = "turing"

urlpatterns = [
    path("", views.index, name="index"),
    path("mine/", views.my_studies, name="my_studies"),
]
