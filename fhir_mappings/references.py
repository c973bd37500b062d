"""Reading FHIR literal references: the one parser every component uses.

A literal reference may be relative (``Patient/123``), absolute
(``https://ehr.example/fhir/Patient/123``) or versioned (``…/Patient/123/_history/2``);
``urn:uuid:``/``urn:oid:`` and ``#contained`` references name something inside the
document and have no type/id of their own, nor has a conditional reference
(``Patient?identifier=sys|val``, the http spec's transaction form), which names a
search (``fhir_mappings.search`` reads it). Search parameters take either a bare id or
a typed one (``patient=Patient/123``).
"""

from __future__ import annotations

import re
from typing import Final

# a conditional reference: ``Type?search`` (the http spec, transactions)
_CONDITIONAL: Final = re.compile(r"^([A-Z][A-Za-z]*)\?(.*)$", re.DOTALL)


def conditional_reference(url: str) -> tuple[str, str] | None:
    """(resource type, search query) of a conditional reference, or None."""
    match = _CONDITIONAL.match(url)
    return (match.group(1), match.group(2)) if match else None


def reference_target(url: str) -> tuple[str, str] | None:
    """(resource type, logical id) a literal reference names, or None (urn:, #, other).

    A type is recognised by FHIR's spelling (an upper-case first letter), which is what
    separates ``…/fhir/Patient/123`` from an arbitrary two-segment URL path.
    """
    if url.startswith(("urn:", "#")) or _CONDITIONAL.match(url):
        return None  # a conditional reference names no id (its system may hold "/X/")
    parts = url.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2][:1].isupper() and parts[-1]:
        return parts[-2], parts[-1]
    return None


def reference_key(url: str) -> str | None:
    """``Type/id`` of a literal reference (how documents index their resources), or None."""
    target = reference_target(url)
    return f"{target[0]}/{target[1]}" if target else None


def search_id(value: str, resource_type: str) -> str:
    """The id a reference search parameter names: ``Patient/123`` and ``123`` both → ``123``.

    A reference to another type is returned as given, so it matches nothing rather than
    being read as an id of ``resource_type``.
    """
    target = reference_target(value)
    if target is None:
        return value
    return target[1] if target[0] == resource_type else value
