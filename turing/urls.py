from django.urls import path

from turing import views

app_name = "turing"

urlpatterns = [
    # Admins.
    path("", views.index, name="index"),
    path("new/", views.study_create, name="create"),
    path("<int:pk>/", views.study_detail, name="detail"),
    path("<int:pk>/edit/", views.study_create, name="edit"),
    path("<int:pk>/open/", views.study_open, name="open"),
    path("<int:pk>/close/", views.study_close, name="close"),
    path("<int:pk>/delete/", views.study_delete, name="delete"),
    path("<int:pk>/report/", views.study_report, name="report"),
    path("<int:pk>/export/<str:kind>", views.study_export, name="export"),
    # Raters.
    path("mine/", views.my_studies, name="my_studies"),
    path("rate/<int:pk>/", views.rate, name="rate"),
    path("rate/<int:pk>/trial", views.trial, name="trial"),
    path("rate/<int:pk>/answer", views.answer, name="answer"),
    path("rate/<int:pk>/pause", views.pause, name="pause"),
    path("img/<str:token>", views.image, name="image"),
]
