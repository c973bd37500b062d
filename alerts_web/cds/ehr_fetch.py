"""Read the Encounter from the EHR's FHIR server when the client did not prefetch it.

Only a ``fhirServer`` listed for a trusted EHR in ``READMIT_CDS_CLIENTS_FILE`` is ever
called (for a JWT caller: its own issuer's servers), with the ``fhirAuthorization``
token the client handed us, a short timeout and no redirects: a hook call cannot make
this service fetch an arbitrary URL. Any failure is "not found" (the view answers 412).
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

import httpx

from alerts_web.cds.client_jwt import TrustedEhr, trusted_ehrs
from fhir_mappings import FHIR_JSON

TIMEOUT_S: Final = 3.0


def allowed_servers(ehr: TrustedEhr | None) -> frozenset[str]:
    """FHIR bases the caller may name: its issuer's, or (API key) any trusted EHR's."""
    if ehr is not None:
        return frozenset(ehr.fhir_servers)
    return frozenset(s for e in trusted_ehrs().values() for s in e.fhir_servers)


def fetch_encounter(
    server: str, authorization: dict[str, Any], encounter_id: str, allowed: frozenset[str]
) -> dict[str, Any] | None:
    """``GET {fhirServer}/Encounter/{id}`` as the client authorised, or None."""
    base = server.rstrip("/")
    if base not in allowed:
        return None
    try:
        response = httpx.get(
            f"{base}/Encounter/{quote(encounter_id, safe='')}",
            headers={
                "Accept": FHIR_JSON,
                "Authorization": f"Bearer {authorization['access_token']}",
            },
            timeout=TIMEOUT_S,
            follow_redirects=False,
        )
        if response.status_code != 200:
            return None
        body = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    return body if isinstance(body, dict) and body.get("resourceType") == "Encounter" else None
