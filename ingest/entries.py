"""The FHIR http rules for transaction/batch entries, checked before any mapping.

This receiver only creates and updates (POST, and PUT ``Type/id``, optionally with
``ifMatch``: ``ingest.versions`` checks it). Every other request
in a Bundle is refused with its entry index as data, never answered as if done: a
transaction fails whole with that OperationOutcome, a batch answers that entry with it.
Checking each entry once, on its own, keeps a batch's cost linear in its entries.
"""

from __future__ import annotations

from typing import Any

from fhir_mappings.bundle import conditional_targets, validate_resource
from fhir_mappings.errors import FhirMappingError, InvalidEntry, UnsupportedInteraction

SUPPORTED_METHODS = frozenset({"POST", "PUT"})
# conditions this receiver does not evaluate (ifMatch is evaluated, on PUT only)
_CONDITIONS = ("ifNoneMatch", "ifModifiedSince")


def entry_problem(index: int, entry: Any, *, validate: bool = True) -> FhirMappingError | None:
    """What is wrong with one entry on its own (None when nothing is)."""
    where = f"Bundle.entry[{index}]"

    def bad(cls: type[FhirMappingError], message: str, element: str) -> FhirMappingError:
        return cls(f"{where}: {message}", element=f"{where}.{element}", entry_index=index)

    if not isinstance(entry, dict):
        return bad(InvalidEntry, "an entry must be a JSON object", "entry")
    request = entry.get("request")
    if not isinstance(request, dict):
        return bad(InvalidEntry, "a transaction/batch entry needs a request", "request")
    method = str(request.get("method") or "")
    url = str(request.get("url") or "")
    if method.upper() in SUPPORTED_METHODS and method not in SUPPORTED_METHODS:
        # FHIR codes are case-sensitive (http-verb: GET | POST | PUT ...): "post" is no verb
        return bad(
            InvalidEntry,
            f"request.method {method!r} is not an http-verb code (they are upper case: "
            f"{method.upper()})",
            "request.method",
        )
    if method not in SUPPORTED_METHODS:
        return bad(
            UnsupportedInteraction,
            f"{method or 'a missing method'} is not supported here (only POST and PUT)",
            "request.method",
        )
    if "$" in url:
        return bad(UnsupportedInteraction, f"operation {url!r} is not supported", "request.url")
    if "?" in url:
        return bad(UnsupportedInteraction, "conditional update is not supported", "request.url")
    if request.get("ifMatch") and method != "PUT":
        return bad(UnsupportedInteraction, "ifMatch applies to PUT only", "request.ifMatch")
    for condition in _CONDITIONS:
        if request.get(condition):
            return bad(
                UnsupportedInteraction, f"{condition} is not supported", f"request.{condition}"
            )
    resource = entry.get("resource")
    if not isinstance(resource, dict):
        return bad(InvalidEntry, f"a {method} entry needs a resource", "resource")
    full_url = entry.get("fullUrl")
    if full_url is not None and not _absolute(str(full_url)):
        return bad(
            InvalidEntry, "fullUrl must be absolute (urn:uuid:, urn:oid: or a URL)", "fullUrl"
        )
    if method == "PUT" and url.strip("/") != f"{resource.get('resourceType')}/{resource.get('id')}":
        return bad(InvalidEntry, "a PUT url must be [type]/[id] of its resource", "request.url")
    if method == "POST" and url.split("?")[0].rstrip("/").rsplit("/", 1)[-1] != resource.get(
        "resourceType"
    ):
        return bad(
            InvalidEntry,
            f"a POST url must be the type of its resource: {url!r} does not name "
            f"{resource.get('resourceType')}",
            "request.url",
        )
    if validate:
        try:
            validate_resource(resource, f"{where}.resource")
        except FhirMappingError as exc:
            exc.entry_index = index
            return exc
    return None


def entry_problems(doc: dict[str, Any], *, validate: bool = True) -> dict[int, FhirMappingError]:
    """Every entry's own problem, duplicates (the second entry naming a resource
    identity, type/id or fullUrl, already named is refused) and conditional references
    matching no entry or several; by entry index, in entry order."""
    problems: dict[int, FhirMappingError] = {}
    seen: set[str] = set()
    entries = doc.get("entry") or []
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        problem = entry_problem(index, entry, validate=validate)
        if problem is not None:
            problems[index] = problem
            continue
        identities = _identities(entry)
        if identities & seen:
            problems[index] = InvalidEntry(
                f"Bundle.entry[{index}]: the same resource appears twice in one Bundle",
                element=f"Bundle.entry[{index}].fullUrl",
                entry_index=index,
            )
            continue
        seen |= identities
    # conditional references among the entries (the same rule the mapper applies)
    resources = [
        (index, entry["resource"])
        for index, entry in enumerate(entries if isinstance(entries, list) else [])
        if index not in problems
        and isinstance(entry, dict)
        and isinstance(entry.get("resource"), dict)
    ]
    for at, problem in conditional_targets(resources)[1].items():
        if at is not None:
            problems.setdefault(at, problem)
    return dict(sorted(problems.items()))


def if_matches(doc: dict[str, Any]) -> list[tuple[int, str, str]]:
    """(entry index, ``Type/id``, ifMatch value) of each PUT entry carrying ``ifMatch``."""
    found = []
    for index, entry in enumerate(doc.get("entry") or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
            continue
        value = entry["request"].get("ifMatch")
        resource = entry.get("resource")
        if value and isinstance(resource, dict) and resource.get("id"):
            found.append((index, f"{resource.get('resourceType')}/{resource['id']}", str(value)))
    return found


def _identities(entry: dict[str, Any]) -> set[str]:
    resource = entry["resource"]
    found = {str(entry["fullUrl"])} if entry.get("fullUrl") else set()
    if resource.get("id"):
        found.add(f"{resource.get('resourceType')}/{resource['id']}")
    return found


def _absolute(url: str) -> bool:
    return url.startswith(("urn:uuid:", "urn:oid:", "http://", "https://"))
