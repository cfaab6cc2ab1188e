from django.contrib import admin

from synthesis.models import Checkpoint, TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["pk", "name", "arch", "training_set", "status", "kimg_done", "created_at"]
    list_filter = ["status", "arch"]


admin.site.register(Checkpoint)
