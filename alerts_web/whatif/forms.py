"""The what-if form: every dataset field with a fitting widget and validation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import RegexValidator

from alerts_web.feature_fields import FieldSpec, default_value, field_specs


def form_field(spec: FieldSpec) -> forms.Field:
    initial = default_value(spec)
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
    assert spec.pattern is not None
    return forms.CharField(
        label=spec.label,
        max_length=64,
        initial=initial,
        validators=[RegexValidator(spec.pattern, f"Not a valid {spec.label} code.")],
        widget=forms.TextInput(attrs={"class": "form-control form-control-sm"}),
    )


class WhatIfForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for spec in field_specs():
            self.fields[spec.name] = form_field(spec)

    def grouped(self) -> list[tuple[str, list[forms.BoundField]]]:
        """Bound fields in the dataset's groups, for the template's fieldsets."""
        groups: dict[str, list[forms.BoundField]] = {}
        for spec in field_specs():
            groups.setdefault(spec.group, []).append(self[spec.name])
        return list(groups.items())
