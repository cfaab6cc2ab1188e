from django.shortcuts import get_object_or_404
from rest_framework import generics

from imagesets import selectors
from imagesets.models import ImageSet, Split
from imagesets.serializers import ImageSerializer, ImageSetSerializer


class ImageSetList(generics.ListAPIView):
    """Image sets (admins only). Filter with ?kind=real|synthetic and ?status=ready."""

    serializer_class = ImageSetSerializer

    def get_queryset(self):
        qs = selectors.imageset_list()
        for field in ("kind", "status", "modality"):
            if value := self.request.query_params.get(field):
                qs = qs.filter(**{field: value})
        return qs


class ImageSetDetail(generics.RetrieveAPIView):
    serializer_class = ImageSetSerializer

    def get_queryset(self):
        return selectors.imageset_list()


class ImageList(generics.ListAPIView):
    """Images of one set, in order; ?split=train|val|test."""

    serializer_class = ImageSerializer

    def get_queryset(self):
        imageset = get_object_or_404(ImageSet, pk=self.kwargs["pk"])
        split = self.request.query_params.get("split")
        return selectors.image_page(imageset, split=split if split in Split.values else None)
