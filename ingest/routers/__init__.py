"""HTTP routers of the ingest API: ``fhir`` (the FHIR receiver), ``ops`` (token,
scores, health, metrics)."""
