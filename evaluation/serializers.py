from rest_framework import serializers

from evaluation.models import METRIC_NAMES, Evaluation
from imagesets.models import ImageSet


class EvaluationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Evaluation
        fields = [
            "id",
            "batch",
            "reference",
            "candidate",
            "metrics",
            "dice_arm",
            "params",
            "status",
            "progress",
            "progress_message",
            "results",
            "protocol",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class EvaluationCreateSerializer(serializers.Serializer):
    reference = serializers.PrimaryKeyRelatedField(queryset=ImageSet.objects.all())
    candidates = serializers.PrimaryKeyRelatedField(queryset=ImageSet.objects.all(), many=True)
    metrics = serializers.ListField(child=serializers.ChoiceField(choices=METRIC_NAMES), allow_empty=False)
    params = serializers.DictField(required=False, default=dict)
    dice_arm = serializers.ChoiceField(choices=Evaluation.DiceArm.choices, default=Evaluation.DiceArm.SYNTHETIC)
    include_baseline = serializers.BooleanField(default=True)
