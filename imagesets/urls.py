from django.urls import path

from imagesets import views

app_name = "imagesets"

urlpatterns = [
    path("", views.imageset_list, name="list"),
    path("import/", views.imageset_import, name="import"),
    path("<int:pk>/", views.imageset_detail, name="detail"),
    path("<int:pk>/status.json", views.imageset_status, name="status"),
    path("<int:pk>/delete/", views.imageset_delete, name="delete"),
    path("images/<int:pk>.png", views.image_file, name="image_file"),
    path("images/<int:pk>/overlay.png", views.image_overlay, name="image_overlay"),
]
