"""The list of wards the demo creates.

Uses the shared ward list in ``fhir_mappings.codes.wards`` (the synthesizer puts
encounters on these wards). Events carry the ward's FHIR Location id (``Ward.id``,
e.g. ``ward-card``) as ``ward``, so that id is our ``Ward.code``; the short code goes
into the display name. A small built-in list stands in if the module is missing.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_FALLBACK: tuple[tuple[str, str], ...] = (
    ("4N", "4 North — Medicine"),
    ("5S", "5 South — Cardiology"),
    ("6E", "6 East — Endocrinology"),
    ("ICU", "Intensive Care"),
)


def _pairs_from(obj: Any) -> list[tuple[str, str]]:
    if isinstance(obj, dict):
        return [(str(k), str(v)) for k, v in obj.items()]
    out = []
    for item in obj:
        if isinstance(item, str):
            out.append((item, item))
        elif isinstance(item, tuple | list) and len(item) >= 2:
            out.append((str(item[0]), str(item[1])))
        else:
            key = getattr(item, "id", None) or getattr(item, "code", None) or str(item)
            short = getattr(item, "code", None)
            name = str(getattr(item, "name", None) or key)
            out.append((str(key), f"{name} ({short})" if short and short != key else name))
    return out


def demo_wards() -> list[tuple[str, str]]:
    """(code, display name) of every ward in the shared list, or the fallback list."""
    try:
        module = import_module("fhir_mappings.codes.wards")
    except ImportError:
        return list(_FALLBACK)
    for attr in ("WARDS",):
        if hasattr(module, attr):
            pairs = _pairs_from(getattr(module, attr))
            if pairs:
                return pairs
    return list(_FALLBACK)
