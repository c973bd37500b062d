"""The one builder of the FHIR R4 OperationOutcome shape, used by the mapper's errors,
the ingest API and the web app's FHIR API, so every refusal looks the same."""

from __future__ import annotations

from typing import Any


def operation_outcome(
    diagnostics: str,
    *,
    code: str,
    expression: str | None = None,
    severity: str = "error",
) -> dict[str, Any]:
    """An OperationOutcome with one issue (``code`` from the FHIR IssueType value set)."""
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}
