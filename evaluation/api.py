from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluation import selectors, services
from evaluation.models import Evaluation
from evaluation.serializers import EvaluationCreateSerializer, EvaluationSerializer


class EvaluationList(generics.ListCreateAPIView):
    """Evaluations (admins only). POST {reference, candidates, metrics, params?} queues one per candidate."""

    queryset = Evaluation.objects.select_related("reference", "candidate").order_by("-created_at")

    def get_serializer_class(self):
        return EvaluationCreateSerializer if self.request.method == "POST" else EvaluationSerializer

    def create(self, request, *args, **kwargs):
        serializer = EvaluationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            created = services.evaluation_create(**serializer.validated_data, user=request.user)
        except services.EvaluationError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(EvaluationSerializer(created, many=True).data, status=status.HTTP_201_CREATED)


class EvaluationDetail(generics.RetrieveAPIView):
    queryset = Evaluation.objects.all()
    serializer_class = EvaluationSerializer


class Comparison(APIView):
    """The comparison tables as JSON: one list of rows per reference set."""

    def get(self, request):
        return Response(
            [
                {"reference": t["reference"].name, "classes": t["classes"], "rows": t["rows"]}
                for t in selectors.comparison_tables()
            ]
        )


class WeightsStatus(APIView):
    def get(self, request):
        return Response(services.weights_status())
