from django.conf import settings
from django.db import models

RATERS_GROUP = "raters"


class RaterProfile(models.Model):
    """Optional facts about a rater, used for subgroup statistics (e.g. by experience)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rater_profile")
    specialty = models.CharField(max_length=100, blank=True, help_text="e.g. cardiac radiology")
    years_experience = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"


def is_rater(user) -> bool:
    return user.is_authenticated and user.groups.filter(name=RATERS_GROUP).exists()
