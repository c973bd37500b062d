"""The integrators' REST API (v1). Users (session) see their wards; keys need scopes."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts_web.alerts.models import Alert, AlertStatus
from alerts_web.api.auth import may_see_ward, wards_for
from alerts_web.api.models import Scope
from alerts_web.api.permissions import HasRequiredScope
from alerts_web.api.serializers import (
    AlertSerializer,
    FeatureRecordSerializer,
    HistoryPointSerializer,
    PredictionSerializer,
    ScoreSerializer,
)
from alerts_web.feature_fields import (
    InsufficientInformation,
    check_minimum_information,
    record_from_values,
)
from alerts_web.scores import latest_score, patient_history
from alerts_web.scoring import ModelUnavailable, score_record
from model_store.explain import NOT_APPLICABLE_TEXT
from readmit_core.events import ScoreEvent

PERMISSIONS = (IsAuthenticated, HasRequiredScope)


def score_body(event: ScoreEvent) -> dict[str, Any]:
    """A score as the API states it: no probability or band where the risk does not apply."""
    body = event.model_dump()
    applies = not event.non_readmittable
    body["risk_applies"] = applies
    body["statement"] = None if applies else NOT_APPLICABLE_TEXT
    if not applies:
        body.update(probability=None, band=None, factors=[], interventions=[])
    return body


class EncounterScoreView(APIView):
    """The latest score of one encounter."""

    permission_classes = PERMISSIONS
    required_scope = Scope.SCORES_READ.value

    @extend_schema(responses={200: ScoreSerializer}, operation_id="encounter_score")
    def get(self, request: Request, encounter_id: str) -> Response:
        event = latest_score(encounter_id)
        if event is None or not may_see_ward(request.user, event.ward):
            raise NotFound("No score for this encounter.")
        return Response(ScoreSerializer(score_body(event)).data)


class PatientScoresView(generics.GenericAPIView):
    """A patient's score history (oldest first), paginated."""

    permission_classes = PERMISSIONS
    required_scope = Scope.SCORES_READ.value
    serializer_class = HistoryPointSerializer

    @extend_schema(
        responses={200: HistoryPointSerializer(many=True)}, operation_id="patient_scores"
    )
    def get(self, request: Request, patient_id: str) -> Response:
        points = patient_history(patient_id)
        visible = [p for p in points if self._visible(request, p.encounter_id)]
        if not visible:
            raise NotFound("No scores for this patient.")
        page = self.paginate_queryset(visible)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @staticmethod
    def _visible(request: Request, encounter_id: str) -> bool:
        event = latest_score(encounter_id)
        return event is not None and may_see_ward(request.user, event.ward)


class WardAlertsView(generics.ListAPIView):
    """Alerts of a ward, highest risk first; ``?status=open|acknowledged|closed``."""

    permission_classes = PERMISSIONS
    required_scope = Scope.ALERTS_READ.value
    serializer_class = AlertSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status", OpenApiTypes.STR, enum=[s.value for s in AlertStatus], required=False
            )
        ],
        operation_id="ward_alerts",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        ward = self.kwargs["ward"]
        if not wards_for(self.request.user).filter(code=ward).exists():
            raise NotFound("No such ward.")
        qs = Alert.objects.filter(ward__code=ward).select_related("ward", "assigned_to")
        wanted = self.request.query_params.get("status")
        if wanted is not None:
            if wanted not in AlertStatus.values:
                raise ValidationError({"status": [f"Must be one of {AlertStatus.values}."]})
            qs = qs.filter(status=wanted)
        return qs.order_by("-probability", "-created_at")


class PredictView(APIView):
    """Score a feature record (dataset column names) and explain the score."""

    permission_classes = PERMISSIONS
    required_scope = Scope.PREDICT.value

    @extend_schema(
        request=FeatureRecordSerializer,
        responses={200: PredictionSerializer},
        operation_id="predict",
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
        serializer = FeatureRecordSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        record = record_from_values(serializer.validated_data, encounter_id="api-predict")
        try:
            check_minimum_information(record)
        except InsufficientInformation as exc:
            raise ValidationError({k: [v] for k, v in exc.fields.items()}) from exc
        try:
            result = score_record(record)
        except ModelUnavailable as exc:
            return Response(
                {"error": "model_unavailable", "detail": exc.reason},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        applies = not result.non_readmittable
        body = {
            "probability": result.probability if applies else None,
            "band": result.band if applies else None,
            "model_version": result.model_version,
            "risk_applies": applies,
            "statement": None if applies else NOT_APPLICABLE_TEXT,
            "factors": [f.model_dump() for f in result.factors],
            "interventions": [i.model_dump() for i in result.interventions],
            "data_quality": list(result.data_quality),
        }
        return Response(PredictionSerializer(body).data)
