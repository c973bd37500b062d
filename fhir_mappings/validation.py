"""FHIR R4 validation of one resource with the ``fhir.resources`` R4B models, made cheap
by never validating the same element value twice.

Why: validation was about half of ingest CPU (Observations ~60 % of it), while real
feeds repeat themselves: the same LOINC ``code`` and ``category`` on every lab, the same
``subject`` and ``encounter`` reference on every resource of a stay, the same
``medicationCodeableConcept`` on every order of a drug. The models validate each
top-level element on its own (pydantic field validation; the only model-level rules,
``reject_null_complex_elements`` and the after-validators for required primitives and
choice types ``value[x]``, look at which elements are *present*, not at their
content). So an element value that passed once as element E of resource type T passes
as E of any T, and validating it again only costs time.

So a resource passes exactly when (a) it names only elements its model defines, (b) each
element value passes the validator the model itself runs for that element (taken from
the model's pydantic-core schema), and (c) its *shape* passes: which of the elements
whose presence counts (required ones, choice types) are there. Validating (b) element by
element with a memo of values that passed, and (c) once per shape with a full model
call, gives the models' answer at a fraction of the cost.

What is exact about it (tests/unit/fhir_mappings/test_fhir_validation.py compares it
with plain ``model_validate`` on the conformance corpus and on mutated resources):

* an element is vouched for only by the exact JSON of a value (as sent, key order
  included: sorting cost more than a reordered repeat saves) that passed as that
  element of that resource type in this process; a new value is checked with the
  model's own validator for that element;
* anything the element-wise rule does not cover goes to ``model_validate`` whole: an
  element the model does not define by its JSON name (unknown, or a Python field name),
  a ``_element`` primitive extension (the required-primitive rule reads its content), a
  null at the top level or in a top-level list (the model's before-validator rules on
  those), a value that is not plain JSON, an unseen shape;
* every refusal comes from ``model_validate`` of the whole resource, so the error, its
  element path and message are the models' own;
* the required-binding checks (``bindings.check_bindings``) run on every resource.

A batch entry checked on its own and then mapped, or an EHR's resend, costs one memo
lookup per element the second time.

The memo is per process, bounded (``MEMO_BYTES``, in two generations) and only ever
holds values that passed, so a miss costs an element validation and nothing can be
accepted that the models refuse.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import orjson
from pydantic import ValidationError
from pydantic_core import SchemaValidator

from fhir_mappings.bindings import check_bindings
from fhir_mappings.errors import InvalidResource, TooDeep, UnknownResourceType

# Elements that R4 feeds send in R4B/R5-style (or Subscriptions Backport) notifications
# and that the R4B models do not define: accepted and ignored, never refused.
FOREIGN_VERSION_ELEMENTS: Final[dict[str, frozenset[str]]] = {
    "SubscriptionStatus": frozenset({"eventsInNotification"}),
}

# Bytes of JSON keys the memo may hold per process before it starts again (a few
# hundred thousand element values: far more than the distinct codings of a feed).
MEMO_BYTES: Final = 32 * 1024 * 1024


@lru_cache(maxsize=256)
def model_class(resource_type: str) -> Any:
    """The R4B model class of a resource type (None when FHIR has no such resource type;
    data types such as ``Quantity`` are not resources)."""
    from fhir.resources.R4B import get_fhir_model_class
    from fhir.resources.R4B.resource import Resource as ResourceModel

    try:
        model = get_fhir_model_class(resource_type)
    except (ValueError, KeyError, AttributeError, ImportError):
        return None
    if resource_type in {"Resource", "DomainResource"}:  # abstract
        return None
    return model if isinstance(model, type) and issubclass(model, ResourceModel) else None


@dataclass(frozen=True)
class _Plan:
    """Per model: the element names it defines (JSON spelling), which may be left out when
    vouched for (optional, not a choice type) and which must stay present (required, or
    one of a ``value[x]``: the after-validators read their presence)."""

    names: frozenset[str]
    optional: frozenset[str]
    present: frozenset[str]


@lru_cache(maxsize=256)
def _plan(model: Any) -> _Plan:
    fields = model.model_fields
    # the presence rules, as the models' after-validators read them (Python names)
    counted = {name for name, _ext in model.get_required_fields(None)}
    for choices in model.get_one_of_many_fields(None).values():
        counted.update(choices)
    optional, present = set(), set()
    for name, field in fields.items():
        alias = field.alias or name
        if alias.startswith("_") or name.endswith("__ext"):
            continue  # primitive extension siblings: never memoised
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if (
            name in counted
            or field.is_required()
            or extra.get("one_of_many")
            or extra.get("element_required")
        ):
            present.add(alias)
        else:
            optional.add(alias)
    return _Plan(
        frozenset(optional | present | {"resourceType"}), frozenset(optional), frozenset(present)
    )


class KnownValid:
    """What passed validation in this process: element values (JSON, keyed with resource
    type and element name) and shapes (resource type and which of its presence-counting
    elements were present).

    Two generations bound the memory: when the young one holds ``limit_bytes / 2`` it
    becomes the old one (the previous old one is dropped); a value found in the old one
    moves back to the young one, so the codings a feed keeps sending stay known."""

    def __init__(self, limit_bytes: int = MEMO_BYTES) -> None:
        self._half = max(1, limit_bytes // 2)
        self._young: set[bytes] = set()
        self._old: set[bytes] = set()
        self._shapes: set[tuple[str, frozenset[str]]] = set()
        self._bytes = 0
        self._lock = threading.Lock()

    def __contains__(self, key: bytes) -> bool:
        if key in self._young:
            return True
        if key in self._old:
            self.add([key])
            return True
        return False

    def has_shape(self, shape: tuple[str, frozenset[str]]) -> bool:
        return shape in self._shapes

    def add(self, keys: list[bytes], shape: tuple[str, frozenset[str]] | None = None) -> None:
        size = sum(len(k) for k in keys)
        with self._lock:
            if self._bytes + size > self._half:
                self._old, self._young, self._bytes = self._young, set(), 0
            self._young.update(keys)
            self._bytes += size
            if shape is not None:
                self._shapes.add(shape)

    def clear(self) -> None:
        with self._lock:
            self._young, self._old, self._bytes = set(), set(), 0
            self._shapes.clear()

    def __len__(self) -> int:
        return len(self._young | self._old)


KNOWN_VALID: Final = KnownValid()


def _model_fields_schema(model: Any) -> tuple[dict[str, Any], Any] | None:
    """(fields, config) of the model's own pydantic-core schema, or None when it does not
    have the expected structure (then every resource of the type goes to the model)."""
    node: Any = model.__pydantic_core_schema__
    config = None
    while isinstance(node, dict) and node.get("type") != "model-fields":
        if node.get("type") == "model":
            config = node.get("config")
        node = node.get("schema")
    if not isinstance(node, dict) or not isinstance(node.get("fields"), dict):
        return None
    return node["fields"], config


@lru_cache(maxsize=4096)
def _field_validator(model: Any, alias: str) -> SchemaValidator | None:
    """The validator the model itself runs for one element: the element's schema taken
    from the model's core schema (self-contained; fhir_core's validators read no other
    element), with the model's config."""
    found = _model_fields_schema(model)
    if found is None:
        return None
    fields, config = found
    for name, field in model.model_fields.items():
        if (field.alias or name) == alias and name in fields:
            return SchemaValidator(fields[name]["schema"], config)
    return None


def _element_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(resource)"


def _json_key(prefix: bytes, value: Any) -> bytes | None:
    try:
        return prefix + orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return None  # not plain JSON (a caller's dict with other objects): never memoised


def validate_resource(resource: Any, where: str, *, memo: KnownValid | None = KNOWN_VALID) -> str:
    """Validate one resource; return its type. Raises typed errors naming the element.

    ``memo=None`` asks the models alone (the reference the memo is tested against)."""
    if not isinstance(resource, dict):
        raise InvalidResource(f"{where}: a resource must be a JSON object", element=where)
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise UnknownResourceType(f"{where}: resourceType is missing", element="resourceType")
    model = model_class(resource_type)
    if model is None:
        raise UnknownResourceType(
            f"{where}: unknown resourceType {resource_type!r}",
            resource_type=resource_type,
            element="resourceType",
        )
    foreign = FOREIGN_VERSION_ELEMENTS.get(resource_type)
    if foreign and not foreign.isdisjoint(resource):
        resource = {k: v for k, v in resource.items() if k not in foreign}
    if memo is None or not _passes_by_elements(model, resource, resource_type, memo):
        _validate_model(model, resource, resource_type, where)  # refuses, or proves it valid
    check_bindings(resource, where)
    return resource_type


def _passes_by_elements(
    model: Any, resource: dict[str, Any], resource_type: str, memo: KnownValid
) -> bool:
    """True when the resource is valid by the element-wise rule (each element value, then
    the shape); False when the models must decide (not eligible, or something failed)."""
    plan = _plan(model)
    keys = _element_keys(resource, resource_type, plan)
    if keys is None:
        return False
    fresh = []
    for name, key in keys.items():
        if key in memo:
            continue
        check = _field_validator(model, name)
        if check is None:
            return False
        try:
            check.validate_python(resource[name])
        except (ValidationError, ValueError, TypeError, RecursionError):
            return False  # the model call reports it, with the model's own message and path
        fresh.append(key)
    shape = (resource_type, frozenset(resource.keys() & plan.present))
    if not memo.has_shape(shape):
        try:
            model.model_validate(resource)
        except (ValidationError, ValueError, TypeError, RecursionError):
            return False
    memo.add(fresh, shape)
    return True


def _element_keys(
    resource: dict[str, Any], resource_type: str, plan: _Plan
) -> dict[str, bytes] | None:
    """Each element's memo key, or None when the resource is one the memo never vouches
    for: an element the model does not define by that name (unknown, or a Python field
    name), a ``_element`` primitive extension (the required-primitive rule reads its
    content), a null at the top or in a top-level list (the model's own before-validator
    rules on those), or a value that is not plain JSON."""
    if not plan.names.issuperset(resource):
        return None
    prefix = resource_type.encode() + b"\x00"
    keys: dict[str, bytes] = {}
    for name, value in resource.items():
        if value is None or (type(value) is list and None in value):
            return None
        if name == "resourceType":
            continue
        key = _json_key(prefix + name.encode() + b"\x00", value)
        if key is None:
            return None
        keys[name] = key
    return keys


def _validate_model(model: Any, resource: dict[str, Any], resource_type: str, where: str) -> None:
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        first = exc.errors()[0]
        element = _element_path(tuple(first.get("loc", ())))
        raise InvalidResource(
            f"{where}: {resource_type} is not valid FHIR R4: {element}: {first.get('msg')}",
            resource_type=resource_type,
            element=element,
        ) from None
    except RecursionError:
        raise TooDeep(
            f"{where}: nested too deeply to validate", resource_type=resource_type
        ) from None
    except (ValueError, TypeError) as exc:  # fhir_core raises these for some primitives
        raise InvalidResource(
            f"{where}: {resource_type} is not valid FHIR R4: {exc}", resource_type=resource_type
        ) from None
