from rest_framework import serializers

from imagesets.models import ImageSet
from synthesis.models import Checkpoint, TrainingRun


class CheckpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = Checkpoint
        fields = ["id", "step", "kimg", "metric", "swd", "kid", "fid", "is_best", "created_at"]


class TrainingRunSerializer(serializers.ModelSerializer):
    display_status = serializers.CharField(read_only=True)
    checkpoints = CheckpointSerializer(many=True, read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "name",
            "training_set",
            "training_splits",
            "arch",
            "overrides",
            "config",
            "status",
            "display_status",
            "kimg_done",
            "step",
            "last_stats",
            "best_metric",
            "device",
            "environment",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "cloned_from",
            "checkpoints",
        ]
        read_only_fields = fields


class RunLaunchSerializer(serializers.Serializer):
    training_set = serializers.PrimaryKeyRelatedField(queryset=ImageSet.objects.all())
    arch = serializers.CharField()
    name = serializers.CharField(required=False, default="", allow_blank=True)
    preset = serializers.CharField(required=False, default="authors")
    overrides = serializers.DictField(required=False, default=dict)


class SampleSerializer(serializers.Serializer):
    checkpoint = serializers.IntegerField(required=False, help_text="checkpoint id (default: best, else latest)")
    count = serializers.IntegerField(min_value=1)
    name = serializers.CharField()
    seed_start = serializers.IntegerField(required=False, default=0, min_value=0)
    psi = serializers.FloatField(required=False, default=1.0)
