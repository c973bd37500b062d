"""US Core race and ethnicity extensions (OMB categories) <-> the dataset's ``race``."""

from __future__ import annotations

from typing import Any, Final

US_CORE_RACE: Final = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY: Final = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
CDC_RACE_SYSTEM: Final = "urn:oid:2.16.840.1.113883.6.238"

WHITE: Final = "2106-3"
BLACK: Final = "2054-5"
ASIAN: Final = "2028-9"
AMERICAN_INDIAN: Final = "1002-5"
PACIFIC_ISLANDER: Final = "2076-8"
OTHER_RACE: Final = "2131-1"  # CDC "Other Race" (a detailed code)
HISPANIC: Final = "2135-2"
NOT_HISPANIC: Final = "2186-5"

OMB_TO_RACE: Final[dict[str, str]] = {
    WHITE: "Caucasian",
    BLACK: "AfricanAmerican",
    ASIAN: "Asian",
    AMERICAN_INDIAN: "Other",
    PACIFIC_ISLANDER: "Other",
}
RACE_TO_OMB: Final[dict[str, tuple[str, str]]] = {
    "Caucasian": (WHITE, "White"),
    "AfricanAmerican": (BLACK, "Black or African American"),
    "Asian": (ASIAN, "Asian"),
}


def _sub(ext: dict[str, Any], url: str) -> list[dict[str, Any]]:
    return [s for s in ext.get("extension", ()) if s.get("url") == url]


def race_from_patient(patient: dict[str, Any]) -> str | None:
    """Dataset race from the extensions; None when neither extension says anything usable.

    Hispanic or Latino ethnicity wins (the dataset codes Hispanic as a race); one OMB
    race category maps by table; several categories, or only detailed codes, -> Other.
    """
    omb: set[str] = set()
    detailed = False
    for ext in patient.get("extension", ()):
        url = ext.get("url")
        if url == US_CORE_ETHNICITY:
            for sub in _sub(ext, "ombCategory"):
                if (sub.get("valueCoding") or {}).get("code") == HISPANIC:
                    return "Hispanic"
        elif url == US_CORE_RACE:
            for sub in _sub(ext, "ombCategory"):
                code = (sub.get("valueCoding") or {}).get("code")
                if code in OMB_TO_RACE:
                    omb.add(code)
            detailed = detailed or bool(_sub(ext, "detailed"))
    if len(omb) == 1:
        return OMB_TO_RACE[omb.pop()]
    if omb or detailed:
        return "Other"
    return None


def race_extensions(race: str) -> list[dict[str, Any]]:
    """US Core extensions for a dataset race value ('?' -> none)."""

    def coding(code: str, display: str) -> dict[str, Any]:
        return {"system": CDC_RACE_SYSTEM, "code": code, "display": display}

    if race == "Hispanic":
        return [
            {
                "url": US_CORE_ETHNICITY,
                "extension": [
                    {"url": "ombCategory", "valueCoding": coding(HISPANIC, "Hispanic or Latino")},
                    {"url": "text", "valueString": "Hispanic or Latino"},
                ],
            }
        ]
    not_hispanic = {
        "url": US_CORE_ETHNICITY,
        "extension": [
            {"url": "ombCategory", "valueCoding": coding(NOT_HISPANIC, "Not Hispanic or Latino")},
            {"url": "text", "valueString": "Not Hispanic or Latino"},
        ],
    }
    if race in RACE_TO_OMB:
        code, display = RACE_TO_OMB[race]
        race_ext = {
            "url": US_CORE_RACE,
            "extension": [
                {"url": "ombCategory", "valueCoding": coding(code, display)},
                {"url": "text", "valueString": display},
            ],
        }
        return [race_ext, not_hispanic]
    if race == "Other":
        race_ext = {
            "url": US_CORE_RACE,
            "extension": [
                {"url": "detailed", "valueCoding": coding(OTHER_RACE, "Other Race")},
                {"url": "text", "valueString": "Other Race"},
            ],
        }
        return [race_ext, not_hispanic]
    return []
