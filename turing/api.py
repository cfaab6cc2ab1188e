from django.shortcuts import get_object_or_404
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from turing import services
from turing.exports import study_statistics_or_none
from turing.models import Study
from turing.serializers import StudySerializer


def _save(serializer: StudySerializer, request, study: Study | None) -> Response:
    serializer.is_valid(raise_exception=True)
    data = dict(serializer.validated_data)
    sources = [services.SourceSpec(s["imageset"], s["generator"]) for s in data.pop("sources")]
    try:
        saved = services.study_save(
            study=study,
            name=data.pop("name"),
            real_imageset=data.pop("real_imageset"),
            sources=sources,
            raters=list(data.pop("raters")),
            user=request.user,
            **data,
        )
    except services.StudyError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return Response(StudySerializer(saved).data, status=status.HTTP_201_CREATED if study is None else 200)


class StudyList(generics.ListCreateAPIView):
    """Studies (admins only). POST creates a draft."""

    serializer_class = StudySerializer
    queryset = Study.objects.prefetch_related("sources", "raters").order_by("-created_at")

    def create(self, request, *args, **kwargs):
        return _save(self.get_serializer(data=request.data), request, None)


class StudyDetail(generics.RetrieveUpdateAPIView):
    """A study; PUT/PATCH only while it is a draft."""

    serializer_class = StudySerializer
    queryset = Study.objects.prefetch_related("sources", "raters")

    def update(self, request, *args, **kwargs):
        study = self.get_object()
        partial = kwargs.get("partial", False)
        if partial:
            merged = {**StudySerializer(study).data, **request.data}
            serializer = self.get_serializer(study, data=merged)
        else:
            serializer = self.get_serializer(study, data=request.data)
        return _save(serializer, request, study)


class StudyAction(APIView):
    """POST /api/studies/<id>/open/ or /close/."""

    action = ""

    def post(self, request, pk: int):
        study = get_object_or_404(Study, pk=pk)
        try:
            study = services.study_open(study=study) if self.action == "open" else services.study_close(study=study)
        except services.StudyError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(StudySerializer(study).data)


class StudyStatistics(APIView):
    def get(self, request, pk: int):
        study = get_object_or_404(Study, pk=pk)
        return Response(study_statistics_or_none(study))
