"""The what-if form: every dataset field with a clinical label, unit and validation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import RegexValidator

from alerts_web.feature_fields import (
    DiagnosisCodeError,
    FieldSpec,
    InsufficientInformation,
    check_minimum_information,
    diagnosis_input,
    field_specs,
    form_initial,
    record_from_values,
)
from readmit_core.features import FeatureRecord


class DiagnosisField(forms.CharField):
    """An ICD-9-CM code, checked against the terminology and kept in the dataset's spelling."""

    def to_python(self, value: Any) -> str:
        try:
            return diagnosis_input(str(super().to_python(value) or ""))
        except DiagnosisCodeError as exc:
            raise forms.ValidationError(str(exc), code="icd9") from exc


def form_field(spec: FieldSpec) -> forms.Field:
    initial = form_initial(spec)
    if spec.kind == "choice":
        return forms.TypedChoiceField(
            label=spec.label,
            choices=spec.choices,
            initial=str(initial),
            widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
        )
    if spec.kind == "integer":
        return forms.IntegerField(
            label=spec.label,
            min_value=spec.min_value,
            max_value=spec.max_value,
            initial=initial,
            widget=forms.NumberInput(attrs={"class": "form-control form-control-sm"}),
        )
    text = forms.TextInput(attrs={"class": "form-control form-control-sm"})
    if spec.kind == "diagnosis":
        return DiagnosisField(
            label=spec.label, max_length=16, required=False, initial="", widget=text
        )
    assert spec.pattern is not None
    return forms.CharField(
        label=spec.label,
        max_length=64,
        initial=initial,
        validators=[RegexValidator(spec.pattern, f"Not a valid {spec.label.lower()}.")],
        widget=text,
    )


class WhatIfForm(forms.Form):
    record: FeatureRecord | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for spec in field_specs():
            self.fields[spec.name] = form_field(spec)

    def clean(self) -> dict[str, Any]:
        """Fields valid one by one; then the record must carry enough to be scored honestly."""
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        record = record_from_values(cleaned)
        try:
            check_minimum_information(record)
        except InsufficientInformation as exc:
            for name, message in exc.fields.items():
                self.add_error(name, message)
        else:
            self.record = record
        return cleaned

    def grouped(self) -> list[tuple[str, list[tuple[forms.BoundField, str]]]]:
        """(section, [(bound field, unit)]) for the template, with errors linked for
        screen readers: ``aria-describedby`` names the unit and error elements the
        template renders (``<id>-unit``, ``<id>-error``), ``aria-invalid`` marks errors."""
        groups: dict[str, list[tuple[forms.BoundField, str]]] = {}
        for spec in field_specs():
            bound = self[spec.name]
            attrs = bound.field.widget.attrs
            described = [f"{bound.auto_id}-unit"] if spec.unit else []
            if bound.errors:
                described.append(f"{bound.auto_id}-error")
                attrs["aria-invalid"] = "true"
                attrs["class"] = attrs.get("class", "") + " is-invalid"
            if described:
                attrs["aria-describedby"] = " ".join(described)
            groups.setdefault(spec.group, []).append((bound, spec.unit))
        return list(groups.items())
