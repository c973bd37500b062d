"""The CapabilityStatement: what this endpoint really supports, and nothing more."""

from __future__ import annotations

from typing import Any

from readmit_core.settings import Settings

ACCEPTED_TYPES = (
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
    "MedicationRequest",
    "Procedure",
)


def capability_statement(settings: Settings, software_version: str) -> dict[str, Any]:
    resources = [
        {
            "type": rtype,
            "interaction": [{"code": "create"}, {"code": "update"}],
            # exactly what is done: every write gets a version (meta.versionId, ETag) and
            # If-Match is honoured; PUT to a new id creates; conditional create; no vread,
            # history, read
            "versioning": "versioned-update",
            "readHistory": False,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-supported",
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
            "documentation": (
                "Accepted for risk scoring; not offered for read or search. Each write "
                'answers ETag W/"n", Last-Modified and Location [base]/[type]/[id]/_history/[n] '
                "(an identical resend keeps its version); PUT answers 201 for a new id, 200 "
                "otherwise; If-Match with another version is 412. vread and _history are "
                "refused (405). Conditional create "
                "(If-None-Exist on POST, entry.request.ifNoneExist on POST entries) searches the "
                "resources already accepted by identifier ([system]|[value], |[value] or a bare "
                "value) and _id, exact, all parameters must match: 0 matches create (201), 1 "
                "answers 200 with the existing Location and creates and scores nothing, more "
                "answer 412; any other parameter or modifier is refused with 400. Encounters are "
                "one visit per business identifier (the VN identifier, else the first with a "
                "system), Patients one per MRN: a resend under new ids is answered 200 with the "
                "visit's existing (versioned) location and not scored again."
            ),
        }
        for rtype in ACCEPTED_TYPES
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-27",
        "kind": "instance",
        "software": {"name": "readmit-ingest", "version": software_version},
        "implementation": {
            "description": "Readmission risk scorer: FHIR R4 ingestion endpoint",
            "url": f"{settings.ingest_url}/fhir",
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Write-only: resources are mapped to feature events and scored; read, search "
                    "and history are not offered here (scores are read from the web app's API)."
                ),
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ],
                            "text": "Bearer tokens (static tokens in the embedded default)",
                        }
                    ],
                    "description": "Every request needs Authorization: Bearer <token>.",
                },
                "resource": resources,
                "interaction": [
                    {
                        "code": "transaction",
                        "documentation": (
                            "Atomic: entries POST [type] and PUT [type]/[id] (with ifMatch) "
                            "only; any other method, conditional url, ifNoneMatch/"
                            "ifModifiedSince, operation, entry without a resource, relative "
                            "fullUrl, repeated resource, ifMatch naming another version (412) "
                            "or conditional reference ([type]?identifier=[system]|[value]) "
                            "matching several entries (412), or for Patient and Encounter "
                            "none (422; other types are then external), fails the whole "
                            "transaction with one OperationOutcome naming the entry. Response "
                            "entries carry status, location (with _history), etag and "
                            "lastModified; Prefer return=minimal|representation|OperationOutcome "
                            "applies to each entry."
                        ),
                    },
                    {
                        "code": "batch",
                        "documentation": (
                            "Entries stand alone: each refused entry is answered with its own "
                            "4xx status and OperationOutcome, the others are accepted (and "
                            "answered as transaction entries are)."
                        ),
                    },
                ],
                "operation": [
                    {
                        "name": "subscription-notification",
                        "definition": "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status",
                        "documentation": (
                            "POST /fhir/$subscription-notification accepts R4B/R5 "
                            "(subscription-notification, SubscriptionStatus first) and R4 "
                            "Subscriptions Backport (history, Parameters first) notifications. "
                            "handshake/heartbeat/query-status: 200, nothing queued. "
                            "full-resource: mapped as sent. id-only: the focus (Encounter, "
                            "Condition, Observation, MedicationRequest, Procedure or Patient) "
                            "and the stay's resources are fetched from the notifying EHR "
                            "(SMART Backend Services client; only the configured EHR base "
                            "URLs) and mapped like a pushed Bundle. empty: the events are "
                            "asked for with Subscription/[id]/$events (content=id-only). "
                            "Non-conformant status: 400; foreign server or unfetchable: 422; "
                            "EHR unavailable: 503 with Retry-After."
                            + (
                                ""
                                if settings.ehr_base_urls
                                else " No EHR is configured here: id-only and empty "
                                "notifications are refused (422)."
                            )
                        ),
                    }
                ],
            }
        ],
    }
