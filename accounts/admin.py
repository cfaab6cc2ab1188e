from django.contrib import admin

from accounts.models import RaterProfile


@admin.register(RaterProfile)
class RaterProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "specialty", "years_experience", "created_at"]
