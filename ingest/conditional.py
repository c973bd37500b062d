"""Conditional create: ``If-None-Exist`` on POST and ``entry.request.ifNoneExist``.

The FHIR http rules: search with the given parameters among what this server already
accepted; no match → create as usual (201), one match → nothing is created or scored
and the answer is 200 with the existing resource's location, several → 412. Supported
parameters are ``identifier`` (``[system]|[value]``, ``|[value]`` for no system, or a
bare value for any system) and ``_id``, both exact; several parameters must all match.
Anything else (other parameters, modifiers, comma-separated alternatives) is refused
with 400 naming it, never silently ignored: ignoring a condition creates duplicates.
The query and its tokens are read by ``fhir_mappings.search``, the parser conditional
references inside a document use too.

The search reads ``resource_identity`` (``patient_state``), where only resources the
broker has acknowledged are marked accepted, so a create that failed (503) is not
found by the client's conditional retry. Encounters and Patients are found under the
visit's and patient's canonical id (a resend under another id is the same visit).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhir_mappings.errors import FhirMappingError, InvalidEntry
from fhir_mappings.identity import ID_SYSTEM
from fhir_mappings.search import search_pairs, token

SUPPORTED_PARAMETERS = ("identifier", "_id")

# (resource type, system or None for any, value) -> ids of accepted resources
Lookup = Callable[[str, str | None, str], set[str]]


class UnsupportedSearchParameter(FhirMappingError):
    """A conditional-create search this receiver cannot run exactly."""

    status = 400
    issue_code = "not-supported"


class MultipleMatches(FhirMappingError):
    """A conditional create whose search matched more than one resource (412)."""

    status = 412
    issue_code = "duplicate"


def criteria(
    query: str, where: str, resource_type: str | None = None
) -> list[tuple[str | None, str]]:
    """(system or None, value) per parameter of an If-None-Exist query; raises
    :class:`UnsupportedSearchParameter` naming what cannot be searched, and
    :class:`InvalidEntry` when a ``Type?`` prefix names another type than the one being
    created (searching Patients for an ``Encounter?`` condition would create blindly)."""
    named = query.strip().partition("?")[0] if "?" in query else ""
    if named and resource_type is not None and named != resource_type:
        raise InvalidEntry(
            f"{where}: the search names {named!r}, but the resource created is a "
            f"{resource_type or 'resource without resourceType'}",
            element=where,
        )
    pairs = search_pairs(query)  # "Patient?identifier=..." as well as the bare query
    if not pairs:
        raise UnsupportedSearchParameter(f"{where}: empty search", element=where)
    out: list[tuple[str | None, str]] = []
    for name, value in pairs:
        if name not in SUPPORTED_PARAMETERS:
            raise UnsupportedSearchParameter(
                f"{where}: search parameter {name!r} is not supported "
                f"(only {', '.join(SUPPORTED_PARAMETERS)})",
                element=where,
            )
        if not value or "," in value:
            raise UnsupportedSearchParameter(
                f"{where}: {name} needs exactly one value", element=where
            )
        if name == "_id":
            out.append((ID_SYSTEM, value))
            continue
        system, code = token(value)
        if not code:
            raise UnsupportedSearchParameter(
                f"{where}: identifier {value!r} has no value (system-only search is not supported)",
                element=where,
            )
        out.append((system, code))
    return out


def matches(lookup: Lookup, resource_type: str, query: str, where: str) -> set[str]:
    """Ids of accepted resources of the type matching every parameter."""
    found: set[str] | None = None
    for system, value in criteria(query, where, resource_type):
        hits = lookup(resource_type, system, value)
        found = hits if found is None else found & hits
    return found or set()


def lock_names(resource_type: str, query: str) -> list[str]:
    """What a conditional create serialises on: one name per searched token, so two
    creates whose searches share a parameter never both find nothing and both create.
    A query that cannot be searched names nothing (it is refused before any write)."""
    try:
        found = criteria(query, "If-None-Exist", resource_type)
    except FhirMappingError:
        return []
    return [f"conditional\x1f{resource_type}\x1f{system}\x1f{value}" for system, value in found]


def entry_lock_names(doc: dict[str, Any]) -> list[str]:
    """:func:`lock_names` of every ``ifNoneExist`` entry of a transaction or batch."""
    names: list[str] = []
    for entry in doc.get("entry") or []:
        request = entry.get("request") if isinstance(entry, dict) else None
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(request, dict) and request.get("ifNoneExist") and isinstance(resource, dict):
            names += lock_names(
                str(resource.get("resourceType") or ""), str(request["ifNoneExist"])
            )
    return names


def split_conditional(
    doc: dict[str, Any], lookup: Lookup, *, atomic: bool
) -> tuple[dict[str, Any], dict[int, str], dict[int, FhirMappingError], list[int]]:
    """Resolve a transaction's/batch's ``ifNoneExist`` entries before anything else.

    Returns the Bundle without the entries that matched one existing resource (their
    fullUrl references now name it: ``Type/id``) or failed, ``{index: "Type/id"}`` of
    the matched ones, ``{index: error}`` of the failed ones (a transaction raises the
    first instead), and the original index of each entry kept.
    """
    entries = doc.get("entry") or []
    existing: dict[int, str] = {}
    failures: dict[int, FhirMappingError] = {}
    renamed: dict[str, str] = {}
    for index, entry in enumerate(entries):
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or not request.get("ifNoneExist"):
            continue
        condition = request["ifNoneExist"]
        where = f"Bundle.entry[{index}].request.ifNoneExist"
        resource = entry.get("resource") or {}
        rtype = str(resource.get("resourceType") or "")
        try:
            if str(request.get("method") or "").upper() != "POST":
                raise InvalidEntry(f"{where}: only a POST entry can be conditional", element=where)
            found = matches(lookup, rtype, str(condition), where)
            if len(found) > 1:
                raise MultipleMatches(
                    f"{where}: {len(found)} {rtype} resources match; nothing was created",
                    element=where,
                )
        except FhirMappingError as exc:
            exc.entry_index = index
            if atomic:
                raise
            failures[index] = exc
            continue
        if found:
            existing[index] = f"{rtype}/{next(iter(found))}"
            if entry.get("fullUrl"):
                renamed[str(entry["fullUrl"])] = existing[index]
    if not existing and not failures:
        return doc, existing, failures, list(range(len(entries)))
    kept = [i for i in range(len(entries)) if i not in existing and i not in failures]
    rest = [_renamed(entries[i], renamed) for i in kept]
    return {**doc, "entry": rest}, existing, failures, kept


def _renamed(node: Any, renamed: dict[str, str]) -> Any:
    """A copy with references to matched entries' fullUrls pointing at the existing one."""
    if not renamed:
        return node
    if isinstance(node, dict):
        out = {k: _renamed(v, renamed) for k, v in node.items()}
        target = node.get("reference")
        if isinstance(target, str) and target in renamed:
            out["reference"] = renamed[target]
        return out
    if isinstance(node, list):
        return [_renamed(v, renamed) for v in node]
    return node
