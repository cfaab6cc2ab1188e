from django.contrib.auth import get_user_model
from rest_framework import serializers

from imagesets.models import ImageSet
from turing.models import ResponseFormat, Study
from turing.services import STUDY_FIELDS

User = get_user_model()


class SourceSerializer(serializers.Serializer):
    imageset = serializers.PrimaryKeyRelatedField(queryset=ImageSet.objects.all())
    generator = serializers.CharField(max_length=100)


class StudySerializer(serializers.ModelSerializer):
    sources = SourceSerializer(many=True)
    raters = serializers.SlugRelatedField(slug_field="username", many=True, queryset=User.objects.all())
    response_format = serializers.ChoiceField(choices=ResponseFormat.choices, default=ResponseFormat.BINARY)

    class Meta:
        model = Study
        fields = [
            "id",
            "name",
            "status",
            "real_imageset",
            "sources",
            *STUDY_FIELDS,
            "raters",
            "parity_report",
            "frozen_definition",
            "created_at",
            "opened_at",
            "closed_at",
        ]
        read_only_fields = [
            "id",
            "status",
            "parity_report",
            "frozen_definition",
            "created_at",
            "opened_at",
            "closed_at",
        ]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["sources"] = [{"imageset": s.imageset_id, "generator": s.generator} for s in instance.sources.all()]
        return data
