"""API payloads. The predict input is built from the same field list as the what-if form."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from alerts_web.alerts.models import Alert
from alerts_web.feature_fields import (
    DiagnosisCodeError,
    FieldSpec,
    default_value,
    diagnosis_input,
    field_specs,
)


class FactorSerializer(serializers.Serializer):
    feature = serializers.CharField()
    label = serializers.CharField()
    contribution = serializers.FloatField()


class InterventionSerializer(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    rationale = serializers.CharField()
    source = serializers.CharField()


class ScoreSerializer(serializers.Serializer):
    """A cached score. When the risk does not apply (death, hospice) ``probability`` and
    ``band`` are null, ``risk_applies`` false and ``statement`` says why."""

    encounter_id = serializers.CharField()
    patient_id = serializers.CharField()
    ward = serializers.CharField()
    probability = serializers.FloatField(allow_null=True)
    band = serializers.ChoiceField(choices=("low", "medium", "high"), allow_null=True)
    model_version = serializers.CharField()
    computed_at = serializers.DateTimeField()
    discharged_at = serializers.DateTimeField(allow_null=True)
    non_readmittable = serializers.BooleanField()
    risk_applies = serializers.BooleanField()
    statement = serializers.CharField(allow_null=True)
    factors = FactorSerializer(many=True)
    interventions = InterventionSerializer(many=True)
    factors_pending = serializers.BooleanField(
        help_text="True while the factors are still being computed: factors and "
        "interventions are empty until then and follow shortly, on this same score."
    )


class HistoryPointSerializer(serializers.Serializer):
    encounter_id = serializers.CharField()
    input_key = serializers.CharField()
    at = serializers.DateTimeField()
    probability = serializers.FloatField(allow_null=True)
    band = serializers.CharField(allow_null=True)
    model_version = serializers.CharField(allow_null=True)


class AlertSerializer(serializers.ModelSerializer):
    ward = serializers.SlugRelatedField(slug_field="code", read_only=True)
    assigned_to = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Alert
        fields = (
            "id",
            "ward",
            "encounter_id",
            "patient_id",
            "probability",
            "band",
            "model_version",
            "status",
            "assigned_to",
            "factors",
            "interventions",
            "factors_pending",
            "computed_at",
            "discharged_at",
            "created_at",
            "updated_at",
        )


def _api_field(spec: FieldSpec) -> serializers.Field:
    default = default_value(spec)
    if spec.kind == "choice":
        return serializers.ChoiceField(
            choices=[c for c, _ in spec.choices], default=str(default), help_text=spec.label
        )
    if spec.kind == "integer":
        return serializers.IntegerField(
            min_value=spec.min_value, max_value=spec.max_value, default=default
        )
    if spec.kind == "diagnosis":
        return DiagnosisSerializerField(max_length=16, default=default, help_text=spec.label)
    assert spec.pattern is not None
    return serializers.RegexField(spec.pattern, max_length=64, default=default)


class DiagnosisSerializerField(serializers.CharField):
    """ICD-9-CM through fhir_mappings.codes, returned in the dataset's spelling."""

    def to_internal_value(self, data: Any) -> str:
        try:
            return diagnosis_input(super().to_internal_value(data))
        except DiagnosisCodeError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class FeatureRecordSerializer(serializers.Serializer):
    """A FeatureRecord keyed by the dataset's column names (``glyburide-metformin`` etc.)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields: dict[str, serializers.Field] = {}
        for spec in field_specs():
            field = _api_field(spec)
            if spec.column != spec.name:
                field.source = spec.name
            fields[spec.column] = field
        return fields

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            known = {spec.column for spec in field_specs()}
            unknown = sorted(set(data) - known)
            if unknown:
                raise serializers.ValidationError({k: ["Unknown field."] for k in unknown})
        return dict(super().to_internal_value(data))


class PredictionSerializer(serializers.Serializer):
    probability = serializers.FloatField(allow_null=True)
    band = serializers.CharField(allow_null=True)
    model_version = serializers.CharField()
    risk_applies = serializers.BooleanField()
    statement = serializers.CharField(allow_null=True)
    factors = FactorSerializer(many=True)
    interventions = InterventionSerializer(many=True)
    data_quality = serializers.ListField(child=serializers.CharField())
