from django.urls import path

from synthesis import views

app_name = "synthesis"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.run_create, name="create"),
    path("<int:clone_of>/clone/", views.run_create, name="clone"),
    path("<int:pk>/", views.run_detail, name="detail"),
    path("<int:pk>/stats.json", views.run_stats, name="stats"),
    path("<int:pk>/grids/<str:name>", views.run_grid, name="grid"),
    path("<int:pk>/cancel/", views.run_cancel, name="cancel"),
    path("<int:pk>/resume/", views.run_resume, name="resume"),
    path("<int:pk>/sample/", views.run_sample, name="sample"),
]
