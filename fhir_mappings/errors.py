"""Typed errors of the FHIR -> feature mapping.

Every way a document can be refused is one of these classes, carrying the resource
type and element that were wrong. The ingest API turns them into an OperationOutcome
with :meth:`FhirMappingError.to_operation_outcome`; the CLI prints the same JSON. A
caller therefore never needs to parse a message, and never sees a stack trace.
"""

from __future__ import annotations

from typing import Any

from fhir_mappings.outcome import operation_outcome
from readmit_core.errors import ReadmitError


class FhirMappingError(ReadmitError):
    """A document we refuse; ``status`` is the HTTP status the API should answer with.

    400 = not a valid FHIR document (unparseable, or failing FHIR's own rules: structure,
    cardinality, required bindings, the http rules for Bundle entries); 422 = valid FHIR
    this service cannot process (business rules: no patient, impossible dates, a
    reference that resolves to nothing, an interaction it does not support).
    ``entry_index`` is the Bundle entry the error is about (None when it is about the
    document as a whole), so a batch can refuse that entry alone without reading the
    message.
    """

    status: int = 422
    issue_code: str = "invalid"

    def __init__(
        self,
        message: str,
        *,
        resource_type: str | None = None,
        element: str | None = None,
        entry_index: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.resource_type = resource_type
        self.element = element
        self.entry_index = entry_index

    @property
    def expression(self) -> str | None:
        """FHIRPath-like location, e.g. ``Encounter.period.end``."""
        if self.resource_type and self.element:
            return f"{self.resource_type}.{self.element}"
        return self.resource_type or self.element

    def to_operation_outcome(self) -> dict[str, Any]:
        """The error as a FHIR R4 OperationOutcome resource (JSON)."""
        return operation_outcome(self.message, code=self.issue_code, expression=self.expression)

    def __str__(self) -> str:
        where = f" at {self.expression}" if self.expression else ""
        return f"{self.message}{where}"


class InvalidJson(FhirMappingError):
    """The body is not JSON, or not a JSON object."""

    status = 400
    issue_code = "structure"


class InvalidResource(FhirMappingError):
    """A resource fails FHIR R4 validation (unknown element, wrong type, bad id, ...)."""

    status = 400  # a basic-rule failure of FHIR itself (http spec: 400)
    issue_code = "structure"


class UnknownResourceType(FhirMappingError):
    """``resourceType`` is missing or names no FHIR R4/R4B resource."""

    status = 400  # a basic-rule failure of FHIR itself (http spec: 400)
    issue_code = "not-supported"


class UnsupportedBundleType(FhirMappingError):
    """A Bundle whose type this mapper does not accept (e.g. ``document``)."""

    issue_code = "not-supported"


class UnresolvedReference(FhirMappingError):
    """A ``urn:uuid:`` (or ``#contained``) reference that matches nothing in the document."""

    issue_code = "not-found"


class MissingPatient(FhirMappingError):
    """An index Encounter without ``subject``: features cannot belong to anyone."""

    issue_code = "required"


class ImpossibleDates(FhirMappingError):
    """Dates that cannot both be true (discharge before admission, birth after admission)."""

    issue_code = "business-rule"


class SubjectMismatch(FhirMappingError):
    """A late resource naming a stay whose patient is not the resource's own: merged, it
    would put one patient's data in another's score, so it is refused, not guessed."""

    issue_code = "business-rule"


class TooDeep(FhirMappingError):
    """JSON nested deeper than ``bundle.MAX_JSON_DEPTH``: refused before any validation,
    so a small hostile body can neither exhaust the stack nor the CPU."""

    status = 400
    issue_code = "too-costly"


class InvalidCode(FhirMappingError):
    """A code outside the value set of a *required* binding (e.g. ``Patient.gender``)."""

    status = 400  # a basic-rule failure of FHIR itself (http spec: 400)
    issue_code = "code-invalid"


class InvalidEntry(FhirMappingError):
    """A transaction/batch entry the FHIR http rules forbid: no resource, no request,
    a relative fullUrl, a PUT whose url does not name the resource, or the same resource
    twice in one Bundle."""

    status = 400
    issue_code = "invalid"


class UnsupportedInteraction(FhirMappingError):
    """An entry asking for something this receiver does not do (DELETE, GET, PATCH,
    conditional update/delete, ``ifMatch``, operations such as ``$lookup``): refused,
    never answered as if done."""

    status = 422
    issue_code = "not-supported"


class VersionConflict(FhirMappingError):
    """``If-Match`` (or ``entry.request.ifMatch``) names a version that is not the
    resource's current one, or the resource has no version yet: nothing is written."""

    status = 412
    issue_code = "conflict"


class AmbiguousReference(FhirMappingError):
    """A conditional reference (``Patient?identifier=...``) matching more than one
    resource: the http spec fails the transaction rather than guess."""

    status = 412
    issue_code = "multiple-matches"


class RefusedStay(FhirMappingError):
    """A batch entry belonging to an index Encounter that was refused (its encounter
    reference names it): kept alone it would be part of a stay nobody accepted."""

    issue_code = "business-rule"
