"""Reading a FHIR document: JSON, validation, entries and reference resolution.

Accepted: a Bundle of any type (transaction, batch, collection, message, searchset,
history, and subscription notifications: R4B/R5 ``subscription-notification`` with a
SubscriptionStatus first entry, or the R4 backport ``history`` Bundle with a
Parameters first entry) or a single loose resource. Every resource is validated with
the ``fhir.resources`` R4B models (R4B is a superset of R4 for every resource we read;
R4 content validates unchanged), each distinct element value once per process
(``fhir_mappings.validation``). Unused resource types are validated and then
ignored. The mapping itself reads the plain JSON dicts: they are known valid, and
dict access is an order of magnitude cheaper than walking model objects.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any, Final

import orjson

from fhir_mappings.errors import (
    AmbiguousReference,
    FhirMappingError,
    InvalidJson,
    InvalidResource,
    TooDeep,
    UnresolvedReference,
    UnsupportedInteraction,
)
from fhir_mappings.references import conditional_reference, reference_key
from fhir_mappings.search import identifier_matches, search_pairs, tokens
from fhir_mappings.validation import FOREIGN_VERSION_ELEMENTS, validate_resource

Resource = dict[str, Any]

# Deepest JSON nesting (objects and arrays) accepted. The deepest public FHIR in the
# conformance corpus (tests/fhir_corpus: HL7, US Core, Synthea, validator cases) is 16
# levels; 64 leaves room for deep Questionnaires and nested extensions while keeping
# every later walk (validation, reference checks) far from Python's recursion limit.
MAX_JSON_DEPTH: Final = 64
_BOM: Final = b"\xef\xbb\xbf"
# conditional references to these must resolve (``conditional_targets``)
IDENTITY_TYPES: Final = frozenset({"Patient", "Encounter"})

__all__ = ["FOREIGN_VERSION_ELEMENTS", "Document", "load_json", "validate_resource"]


def load_json(doc: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """The document as a JSON object (never mutated afterwards)."""
    if isinstance(doc, dict):
        check_depth(doc)
        return doc
    if isinstance(doc, bytes | bytearray | memoryview) and bytes(doc[:3]) == _BOM:
        doc = doc[3:]  # a UTF-8 byte order mark (Microsoft's FHIR server fixtures carry one)
    elif isinstance(doc, str) and doc.startswith("\ufeff"):
        doc = doc[1:]
    try:
        data = orjson.loads(doc)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc) or "recursion" in str(exc).lower():
            raise TooDeep(f"body is nested deeper than {MAX_JSON_DEPTH} levels") from None
        raise InvalidJson(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidJson("body must be a JSON object (a FHIR resource)")
    raw = doc.encode() if isinstance(doc, str) else bytes(doc)
    check_text_depth(raw)
    if _CONTROL_ESCAPE.search(raw):
        check_characters(data)
    return data


# FHIR strings "SHALL NOT contain Unicode character points below 32, except for u0009
# (horizontal tab), u0010 (carriage return) and u0013 (line feed)". In JSON such a
# character can only arrive escaped, so a body without one of these escapes holds none
# (a literal backslash before "u0000" makes a false hit, settled by the walk).
_CONTROL_ESCAPE: Final = re.compile(rb"\\u00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F])|\\[bf]")
_FORBIDDEN: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def check_characters(data: Any) -> None:
    """Refuse (400) a string or key holding a control character FHIR forbids; NUL above
    all, which PostgreSQL cannot store in text and which would otherwise reach the state
    database and fail there. The message names the element."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                where = f"{path}.{key}" if path else str(key)
                if _FORBIDDEN.search(key):
                    raise InvalidResource("a key holds a control character", element=where)
                stack.append((value, where))
        elif isinstance(node, list):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node))
        elif isinstance(node, str) and _FORBIDDEN.search(node):
            raise InvalidResource(
                "a string holds a control character FHIR forbids (below U+0020 other than "
                "tab, carriage return and line feed)",
                element=path,
            )


def check_depth(data: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse JSON nested deeper than ``limit`` (level by level: no recursion to exhaust,
    no per-node allocation)."""
    level: list[Any] = [data]
    depth = 1
    containers = (dict, list)
    while level:
        if depth > limit:
            raise TooDeep(f"body is nested deeper than {limit} levels (JSON objects and arrays)")
        below: list[Any] = []
        extend = below.extend
        for node in level:
            children = node.values() if type(node) is dict else node
            extend([c for c in children if type(c) in containers])
        level = below
        depth += 1


_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_INNERMOST: Final = re.compile(rb"\{\}|\[\]")


def check_text_depth(raw: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """:func:`check_depth` of the JSON text ``raw`` that orjson has just parsed, in C-level
    passes over its bytes instead of a Python walk over every node (0.86 -> 0.4 ms for a
    51 KB discharge Bundle). Valid JSON has backslashes and quotes only in strings: with
    the escaped ones removed (``\\\\`` pairs first, as escapes pair up left to right), the
    text between the remaining quotes is strings; what is outside them, brackets only,
    loses every innermost ``{}``/``[]`` pair each pass, so it is nested deeper than
    ``limit`` exactly when brackets remain after ``limit`` passes."""
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(unescaped.split(b'"')[0::2]).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return
        brackets = _INNERMOST.sub(b"", brackets)
    if brackets:
        raise TooDeep(f"body is nested deeper than {limit} levels (JSON objects and arrays)")


class Document:
    """The resources of one document, indexed for reference resolution.

    ``own_entries``: how many leading entries the sender sent (ingest appends stored
    resources after them, ``ingest.resource_store``); only those can be index stays, the
    rest is context. ``lenient`` (a batch, whose entries stand alone): an entry whose
    reference problem names it is left out and recorded in ``problems`` (by entry
    index) instead of refusing the document; entries that then point at a left-out
    one are left out too, until nothing changes (one linear pass per round).
    """

    def __init__(
        self,
        data: dict[str, Any],
        *,
        validate: bool = True,
        own_entries: int | None = None,
        lenient: bool = False,
    ) -> None:
        self._validate = validate
        self._lenient = lenient
        self._own_entries = own_entries
        self.problems: dict[int, FhirMappingError] = {}
        self.bundle_type: str | None = None
        self._loaded: list[tuple[Resource, str | None, int | None]] = []
        self._conditional: dict[str, Resource] = {}  # resolved conditional references
        self._reset()
        self.focus: list[dict[str, Any]] = []
        if data.get("resourceType") == "Bundle":
            self._read_bundle(data)
        else:
            self._check(data, "resource")
            self._loaded.append((data, None, None))
            self._add(data, None)
        self._resolve_conditional_references()
        self._check_local_references()
        self._read_focus()

    def _reset(self) -> None:
        self.resources: list[Resource] = []
        self.full_urls: dict[int, str] = {}
        self._keys: dict[str, Resource] = {}
        self._identified: dict[tuple[str, Any, str], list[Resource]] = defaultdict(list)
        self.by_type: dict[str, list[Resource]] = defaultdict(list)
        self._entry_of: dict[int, int] = {}  # id(resource) -> its Bundle entry index

    def entry_index(self, resource: Resource) -> int | None:
        """The Bundle entry a resource was read from (None: a loose resource, contained)."""
        return self._entry_of.get(id(resource))

    def is_own(self, resource: Resource) -> bool:
        """Whether the sender sent it (not a stored resource ingest completed it with)."""
        index = self._entry_of.get(id(resource))
        return self._own_entries is None or index is None or index < self._own_entries

    def _refuse(self, problems: dict[int | None, FhirMappingError]) -> None:
        """Raise the first problem; lenient: record those naming an entry, drop their
        resources and re-index (raising only one that names no entry)."""
        if not problems:
            return
        if not self._lenient or None in problems:
            first = problems.get(None) or next(iter(problems.values()))
            raise first
        for index, exc in problems.items():
            if index is not None:
                self.problems.setdefault(index, exc)
        loaded, self._loaded = self._loaded, []
        self._reset()
        for resource, full_url, index in loaded:
            if index is not None and index in self.problems:
                continue
            self._loaded.append((resource, full_url, index))
            self._add(resource, full_url)
            if index is not None:
                self._entry_of[id(resource)] = index
        kept = {id(r) for r in self.resources}
        self._conditional = {t: r for t, r in self._conditional.items() if id(r) in kept}
        self._keys.update(self._conditional)

    # --- loading -------------------------------------------------------------------
    def _read_bundle(self, bundle: dict[str, Any]) -> None:
        entries = bundle.get("entry") or []
        if not isinstance(entries, list):
            raise InvalidResource(
                "Bundle.entry must be a list", resource_type="Bundle", element="entry"
            )
        shell = dict(bundle)
        shell["entry"] = [
            {k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
            for e in entries
        ]
        self._check(shell, "Bundle")
        self.bundle_type = bundle.get("type")
        for i, entry in enumerate(entries):
            resource = entry.get("resource")
            if resource is None:
                continue
            try:
                self._check(resource, f"Bundle.entry[{i}].resource")
            except FhirMappingError as exc:
                exc.entry_index = i  # as data: a batch refuses this entry without parsing
                raise
            self._loaded.append((resource, entry.get("fullUrl"), i))
            self._add(resource, entry.get("fullUrl"))
            self._entry_of[id(resource)] = i

    def _check(self, resource: Any, where: str) -> None:
        if self._validate:
            validate_resource(resource, where)
        elif not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise InvalidResource(f"{where}: not a FHIR resource", element=where)

    def _add(self, resource: Resource, full_url: str | None) -> None:
        self.resources.append(resource)
        resource_type = resource["resourceType"]
        self.by_type[resource_type].append(resource)
        rid = resource.get("id")
        if full_url:
            self.full_urls[id(resource)] = full_url
            self._keys[full_url] = resource
            tail = reference_key(full_url)
            if tail:
                self._keys.setdefault(tail, resource)
        if rid:
            self._keys.setdefault(f"{resource_type}/{rid}", resource)
        for key in identifier_keys(resource):
            self._identified[(resource_type, *key)].append(resource)

    def _read_focus(self) -> None:
        """Encounters a message or notification declares as its subject matter."""
        for header in self.by_type.get("MessageHeader", ()):
            self.focus.extend(header.get("focus") or ())
        for status in self.by_type.get("SubscriptionStatus", ()):
            for event in status.get("notificationEvent") or ():
                if event.get("focus"):
                    self.focus.append(event["focus"])
        if self.bundle_type == "history" and self.resources:
            first = self.resources[0]
            if first.get("resourceType") == "Parameters":
                for param in first.get("parameter") or ():
                    if param.get("name") != "notification-event":
                        continue
                    for part in param.get("part") or ():
                        if part.get("name") == "focus" and part.get("valueReference"):
                            self.focus.append(part["valueReference"])

    def _resolve_conditional_references(self) -> None:
        """Conditional references resolve like a ``Type/id`` to the one resource they
        match (:func:`conditional_targets`); the first that matches none or several
        refuses the document (lenient: that entry)."""
        while True:
            resolved, problems = conditional_targets(
                [(self._entry_of.get(id(r)), r) for r in self.resources]
            )
            if not problems:
                break
            self._refuse(problems)
        self._conditional = resolved
        self._keys.update(resolved)

    def _check_local_references(self) -> None:
        """Every ``urn:uuid:``/``urn:oid:`` reference must name an entry of the document;
        the refusal names the entry holding it. Lenient, until no entry is dropped: an
        entry pointing at a dropped one is dropped next round."""
        local = ("urn:uuid:", "urn:oid:")
        while True:
            problems: dict[int | None, FhirMappingError] = {}
            for resource in self.resources:
                if _local_references_resolve(resource, self._keys):
                    continue
                # one is unresolved: walk again with element paths, to name the first one
                index = self._entry_of.get(id(resource))
                for path, target in _references(resource, ""):
                    if target.startswith(local) and target not in self._keys:
                        where = f"Bundle.entry[{index}]: " if index is not None else ""
                        problems.setdefault(
                            index,
                            UnresolvedReference(
                                f"{where}reference {target!r} matches no entry of the Bundle",
                                resource_type=resource.get("resourceType"),
                                element=path,
                                entry_index=index,
                            ),
                        )
                        break
                if problems and not self._lenient:
                    break
            if not problems:
                return
            self._refuse(problems)

    # --- references ----------------------------------------------------------------
    def resolve(self, ref: dict[str, Any] | None, holder: Resource) -> Resource | None:
        """The resource a Reference points to, or None when it lies outside the document.

        ``#id`` looks in the holder's ``contained``; ``urn:uuid:``/``urn:oid:`` must
        match an entry's fullUrl (else :class:`UnresolvedReference`); relative and
        absolute URLs match a fullUrl or ``Type/id`` of an entry (version suffix
        ignored), else they are external and resolve to None.
        """
        if not ref:
            return None
        target = ref.get("reference")
        if not isinstance(target, str) or not target:
            return self._by_identifier(ref)
        if target.startswith("#"):
            for contained in holder.get("contained") or ():
                if contained.get("id") == target[1:]:
                    return contained
            raise UnresolvedReference(
                f"reference {target!r} names no contained resource",
                resource_type=holder.get("resourceType"),
                element="contained",
            )
        hit = self._keys.get(target)
        if hit is not None:
            return hit
        if target.startswith(("urn:uuid:", "urn:oid:")):
            raise UnresolvedReference(
                f"reference {target!r} matches no entry of the Bundle",
                resource_type=holder.get("resourceType"),
            )
        tail = reference_key(target)
        hit = self._keys.get(tail) if tail else None
        return hit if hit is not None else self._by_identifier(ref)

    def _by_identifier(self, ref: dict[str, Any]) -> Resource | None:
        """A logical reference (``Reference.identifier``, e.g. a visit number) → the one
        resource of the document carrying that identifier (system and value equal), of
        ``Reference.type`` (else of the type the reference URL names) when given; none
        or several → None (external)."""
        ident = ref.get("identifier")
        if not isinstance(ident, dict) or not isinstance(ident.get("value"), str):
            return None
        key = (ident.get("system"), ident["value"])
        wanted = ref.get("type")
        if not isinstance(wanted, str):
            tail = reference_key(str(ref.get("reference") or ""))
            wanted = tail.partition("/")[0] if tail else None
        kinds = [wanted] if wanted else list(self.by_type)
        hits = {id(r): r for kind in kinds for r in self._identified.get((kind, *key), ())}
        return next(iter(hits.values())) if len(hits) == 1 else None

    def external_id(self, ref: dict[str, Any] | None) -> str | None:
        """The logical id a reference names when it is not in the document."""
        if not ref:
            return None
        target = ref.get("reference")
        if isinstance(target, str):
            tail = reference_key(target)
            if tail:
                return tail.partition("/")[2]
        ident = ref.get("identifier") or {}
        value = ident.get("value")
        return value if isinstance(value, str) else None

    def full_url(self, resource: Resource) -> str | None:
        return self.full_urls.get(id(resource))

    def of_type(self, resource_type: str) -> list[Resource]:
        return self.by_type.get(resource_type, [])

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)


def identifier_keys(resource: Resource) -> list[tuple[Any, str]]:
    """(system, value) of each identifier of a resource that has a value."""
    return [
        (ident.get("system"), ident["value"])
        for ident in resource.get("identifier") or ()
        if isinstance(ident, dict) and isinstance(ident.get("value"), str)
    ]


# A Reference string that names a local entry, as orjson writes it: orjson escapes only
# '"', '\\' and control characters, so every "reference" whose value starts with
# urn:uuid: / urn:oid: appears like this; (.) is the byte after the value ('"' unless the
# value held something escaped, which sends the resource to the exact walk).
_LOCAL_REFERENCE: Final = re.compile(rb'"reference":"(urn:(?:uuid|oid):[^"\\]*)(.)')


def _local_references_resolve(resource: Resource, keys: dict[str, Resource]) -> bool:
    """True when every urn:uuid:/urn:oid: reference of the resource names an entry; False
    means "walk it" (one does not, or the fast reading could not tell). One C-level
    serialization and a regex instead of a Python walk that built a path per node."""
    try:
        raw = orjson.dumps(resource)
    except (TypeError, orjson.JSONEncodeError):
        return False
    for match in _LOCAL_REFERENCE.finditer(raw):
        if match.group(2) != b'"' or match.group(1).decode() not in keys:
            return False
    return True


def conditional_targets(
    entries: Sequence[tuple[int | None, Resource]],
) -> tuple[dict[str, Resource], dict[int | None, FhirMappingError]]:
    """Resolve each conditional reference (``Patient?identifier=sys|val``, the http
    spec's transaction rule) among ``entries`` ((entry index, resource) pairs): the
    target of each that matches exactly one resource, and for each entry holding one
    that matches none (422) or several (412) the refusal naming reference and entry.
    Only ``identifier`` is searched, and only among ``entries``: a resource stored
    earlier counts only when the document was completed with it
    (``ingest.resource_store``).

    Strict for :data:`IDENTITY_TYPES` only (whose resolution decides whose stay it is
    and which stay: a guess would score the wrong person). A conditional reference to
    any other type (Synthea names every Practitioner, Organization and Location so)
    matching nothing is external, as ``Practitioner/123`` outside the document is:
    it can cost a missing value, never a wrong identity. Several matches are refused
    whatever the type: the document contradicts itself."""
    by_type: dict[str, list[Resource]] = defaultdict(list)
    for _, resource in entries:
        by_type[str(resource.get("resourceType"))].append(resource)
    resolved: dict[str, Resource] = {}
    problems: dict[int | None, FhirMappingError] = {}
    for index, resource in entries:
        if not _may_hold_conditional(resource):
            continue
        for path, target in _references(resource, ""):
            conditional = conditional_reference(target)
            if conditional is None or target in resolved or index in problems:
                continue
            where = f"Bundle.entry[{index}].resource.{path}" if index is not None else path
            strict = conditional[0] in IDENTITY_TYPES
            try:
                hits = _search(by_type.get(conditional[0], []), target, where, index)
            except FhirMappingError as exc:
                if strict:
                    problems[index] = exc
                continue
            if len(hits) == 1:
                resolved[target] = hits[0]
                continue
            if not hits and not strict:
                continue  # external
            kind = AmbiguousReference if hits else UnresolvedReference
            count = f"{len(hits)} resources" if hits else "no resource"
            problems[index] = kind(
                f"{where}: conditional reference {target!r} matches {count} of the Bundle; "
                "it must match exactly one",
                element=where,
                entry_index=index,
            )
    return resolved, problems


# A "reference" whose string value starts like a conditional reference (``Type?``), as
# orjson writes it: letters and "?" are never escaped, so no such reference is missed.
_CONDITIONAL_REFERENCE: Final = re.compile(rb'"reference":"[A-Z][A-Za-z]*\?')


def _may_hold_conditional(resource: Resource) -> bool:
    """False only when the resource certainly holds no conditional reference: one C-level
    serialization and a regex, where walking every resource in Python (twice a request:
    the entry rules and the mapper) cost ~1 ms a Bundle; True sends it to the walk."""
    try:
        return _CONDITIONAL_REFERENCE.search(orjson.dumps(resource)) is not None
    except (TypeError, orjson.JSONEncodeError):
        return True


def _search(
    candidates: list[Resource], target: str, where: str, index: int | None
) -> list[Resource]:
    """The candidates matching a conditional reference's search (FHIR token search on
    ``identifier``: ``system|value``, ``|value``, ``value``, ``system|``; commas OR,
    repeated parameters AND)."""
    hits = candidates
    for name, value in search_pairs(target) or [("", "")]:
        if name != "identifier" or not value:
            raise UnsupportedInteraction(
                f"{where}: conditional reference {target!r} is not supported: only "
                "identifier=[system]|[value] is searched",
                element=where,
                entry_index=index,
            )
        alternatives = tokens(value)
        hits = [r for r in hits if any(identifier_matches(r, t) for t in alternatives)]
    return hits


def _references(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """(element path, reference string) of every Reference inside a resource."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield path, value
            elif isinstance(value, dict | list):
                yield from _references(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item, path)
