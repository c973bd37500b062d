"""The web app's CapabilityStatement (``GET /fhir/metadata``): exactly what its FHIR base does.

One resource, RiskAssessment, read and search-type only; the search parameters are the
ones :mod:`alerts_web.fhir_api.views` answers (``SEARCH_PARAMS`` lives here and the
views import it, so the statement and the code cannot drift apart); JSON only; no
history, versions, writes, paging or ``_count``; authentication by API key or web
session, not SMART.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

from fhir_mappings import FHIR_JSON

FHIR_VERSION: Final = "4.0.1"
FORMATS: Final = (FHIR_JSON, "json", "application/json")
SEARCH_PARAMS: Final = frozenset({"encounter", "patient", "_format"})
SEARCH_PARAM_DOCS: Final = {
    "encounter": (
        "reference",
        "The Encounter assessed: its id or Encounter/<id>. Gives that encounter's latest score.",
    ),
    "patient": (
        "reference",
        "The Patient assessed: id or Patient/<id>. The latest score of each scored encounter.",
    ),
    "_format": ("token", "json, application/json or application/fhir+json; any other: 406."),
}


def software_version() -> str:
    try:
        return version("readmit")
    except PackageNotFoundError:  # a source tree without installed metadata
        return "0+source"


def capability_statement(base_url: str) -> dict[str, Any]:
    """The statement; its search parameters are the ones the views answer."""
    params = [
        {
            "name": name,
            "definition": f"http://hl7.org/fhir/SearchParameter/RiskAssessment-{name}",
            "type": kind,
            "documentation": text,
        }
        for name, (kind, text) in SEARCH_PARAM_DOCS.items()
        if name in SEARCH_PARAMS and not name.startswith("_")
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-02",
        "kind": "instance",
        "software": {"name": "readmit-web", "version": software_version()},
        "implementation": {
            "description": "Readmission risk scorer: 30-day readmission RiskAssessments",
            "url": base_url,
        },
        "fhirVersion": FHIR_VERSION,
        "format": list(FORMATS),
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Read-only. One RiskAssessment per scored encounter (its latest score; the "
                    "id is the encounter's id). Search needs encounter or patient; any other "
                    "parameter is refused with 400 (not ignored). No paging: a searchset holds "
                    "every match."
                ),
                "security": {
                    "cors": False,
                    "description": (
                        "Authorization: Bearer <API key> (or Api-Key <key>) of a key with scope "
                        "fhir:read; a key restricted to wards sees those wards' scores only, an "
                        "unrestricted key every score. A logged-in web session sees the wards "
                        "its user may see. No SMART on FHIR / OAuth tokens are accepted here."
                    ),
                },
                "resource": [
                    {
                        "type": "RiskAssessment",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "versioning": "no-version",
                        "readHistory": False,
                        "updateCreate": False,
                        "conditionalCreate": False,
                        "conditionalRead": "not-supported",
                        "conditionalUpdate": False,
                        "conditionalDelete": "not-supported",
                        "searchParam": params,
                    }
                ],
            }
        ],
    }
