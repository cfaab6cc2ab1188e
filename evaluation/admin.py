from django.contrib import admin

from evaluation.models import Evaluation, FeatureCache


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ["pk", "reference", "candidate", "status", "created_at"]
    list_filter = ["status"]


admin.site.register(FeatureCache)
