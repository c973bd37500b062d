"""FHIR R4 resources to the model's feature records and back (see CONTRACT.md)."""

from typing import Final

# The FHIR JSON media type (FHIR R4 http.html#mime-type): every FHIR body we send or
# answer carries it — ingest, the web app's FHIR API, replay and the benchmarks.
FHIR_JSON: Final = "application/fhir+json"
