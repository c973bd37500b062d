"""Wards come from the EHR's Locations: the first score naming a Location creates its ward.

A score's ``ward`` is the FHIR Location id the mapper chose (``Location/4west`` →
``4west``); the worklist context carries that Location's ``name`` (or the reference's
``display``) as ``unit``. A ward nobody has seen is created here with that name, no
nurses (an admin assigns them; staff and planners see it at once) and ``origin=ehr``.
A ward still named after its code gets the EHR's name when one arrives later; a name
an admin gave is never overwritten.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from alerts_web.wards.models import Ward, WardOrigin
from readmit_core.events import UNASSIGNED, ScoreEvent

UNASSIGNED_NAME = "No location recorded"
_CODE_MAX = Ward._meta.get_field("code").max_length or 64
_NAME_MAX = Ward._meta.get_field("name").max_length or 200


def _name_for(code: str, name: str | None) -> str:
    cleaned = " ".join((name or "").split())
    if cleaned:
        return cleaned[:_NAME_MAX]
    return UNASSIGNED_NAME if code == UNASSIGNED else code[:_NAME_MAX]


def ward_for_location(code: str, name: str | None = None) -> Ward:
    """The ward of a Location id, created (``origin=ehr``) the first time it is seen."""
    code = code.replace("\x00", "")[:_CODE_MAX] or UNASSIGNED
    ward = Ward.objects.filter(code=code).first()
    if ward is None:
        try:
            with transaction.atomic():  # a concurrent feed may create it first
                return Ward.objects.create(
                    code=code,
                    name=_name_for(code, name),
                    origin=WardOrigin.EHR,
                    first_seen_at=timezone.now(),
                )
        except IntegrityError:
            ward = Ward.objects.get(code=code)
    better = _name_for(code, name)
    if ward.name == code and better != code:
        Ward.objects.filter(pk=ward.pk, name=code).update(name=better)
        ward.name = better
    return ward


def ward_of(event: ScoreEvent) -> Ward:
    """The ward a score belongs to, named from its worklist context's unit."""
    return ward_for_location(event.ward, event.context.unit if event.context else None)
