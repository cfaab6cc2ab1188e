from django.urls import reverse
from rest_framework import serializers

from imagesets.models import Image, ImageSet


class ImageSetSerializer(serializers.ModelSerializer):
    n_images = serializers.IntegerField(read_only=True)

    class Meta:
        model = ImageSet
        fields = [
            "id",
            "uid",
            "name",
            "description",
            "modality",
            "kind",
            "height",
            "width",
            "channels",
            "label_names",
            "preprocessing",
            "provenance",
            "source_format",
            "import_options",
            "content_hash",
            "status",
            "progress",
            "progress_message",
            "error",
            "created_at",
            "finished_at",
            "n_images",
        ]
        read_only_fields = fields


class ImageSerializer(serializers.ModelSerializer):
    image_url = serializers.SerializerMethodField()
    mask_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = [
            "id",
            "index",
            "subject",
            "slice_index",
            "frame",
            "split",
            "checksum",
            "mask_checksum",
            "metadata",
            "image_url",
            "mask_url",
        ]
        read_only_fields = fields

    def get_image_url(self, obj: Image) -> str:
        return self.context["request"].build_absolute_uri(reverse("imagesets:image_file", args=[obj.pk]))

    def get_mask_url(self, obj: Image) -> str | None:
        if not obj.mask_file:
            return None
        return self.context["request"].build_absolute_uri(reverse("imagesets:image_overlay", args=[obj.pk]))
