from django.shortcuts import get_object_or_404
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from imagesets.serializers import ImageSetSerializer
from synthesis import services
from synthesis.models import TrainingRun
from synthesis.presets import preset_overrides
from synthesis.serializers import RunLaunchSerializer, SampleSerializer, TrainingRunSerializer


class RunList(generics.ListCreateAPIView):
    """Training runs (admins only). POST {training_set, arch, preset?, overrides?} launches one."""

    queryset = TrainingRun.objects.prefetch_related("checkpoints").order_by("-created_at")

    def get_serializer_class(self):
        return RunLaunchSerializer if self.request.method == "POST" else TrainingRunSerializer

    def create(self, request, *args, **kwargs):
        s = RunLaunchSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        try:
            overrides = {**preset_overrides(d["preset"], d["arch"]), **d["overrides"]}
            run = services.training_run_launch(
                training_set=d["training_set"], arch=d["arch"], overrides=overrides, name=d["name"], user=request.user
            )
        except (services.RunError, KeyError) as exc:
            return Response({"detail": str(exc).strip("'\"")}, status=status.HTTP_400_BAD_REQUEST)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED)


class RunDetail(generics.RetrieveAPIView):
    queryset = TrainingRun.objects.prefetch_related("checkpoints")
    serializer_class = TrainingRunSerializer


class RunAction(APIView):
    """POST /api/runs/<id>/cancel/ or /resume/."""

    action = ""

    def post(self, request, pk: int):
        run = get_object_or_404(TrainingRun, pk=pk)
        try:
            run = (services.training_run_cancel if self.action == "cancel" else services.training_run_resume)(run=run)
        except services.RunError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(TrainingRunSerializer(run).data)


class RunSample(APIView):
    """POST /api/runs/<id>/sample/ {count, name, checkpoint?, seed_start?, psi?} -> the new (queued) image set."""

    def post(self, request, pk: int):
        run = get_object_or_404(TrainingRun, pk=pk)
        s = SampleSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        checkpoint = (
            run.checkpoints.filter(pk=d["checkpoint"]).first()
            if "checkpoint" in d
            else (run.best_checkpoint or run.latest_checkpoint)
        )
        if checkpoint is None:
            return Response({"detail": "The run has no such checkpoint."}, status=status.HTTP_400_BAD_REQUEST)
        try:
            imageset = services.sample_launch(
                run=run,
                checkpoint=checkpoint,
                count=d["count"],
                name=d["name"],
                seed_start=d["seed_start"],
                psi=d["psi"],
                user=request.user,
            )
        except services.RunError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(ImageSetSerializer(imageset).data, status=status.HTTP_201_CREATED)
