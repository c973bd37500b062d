"""ICD-9-CM diagnosis codes: the dataset's spelling, FHIR's spelling, and diagnosis groups.

The dataset writes ICD-9-CM codes in a shortened form: leading zeros of numeric
categories dropped (``038`` -> ``38``), every code except diabetes (250.xx) cut to its
category (``428.0`` -> ``428``; one stray ``365.44`` is kept as is) and trailing zeros
of the 250.xx sub-codes dropped (``250.00`` -> ``250``, ``250.60`` -> ``250.6``).
FHIR carries the canonical form (``http://hl7.org/fhir/sid/icd-9-cm``): the
synthesizer writes :func:`canonical_code`, the mapper reads :func:`dataset_code`, and
the two are inverse on every code of the dataset.

Diagnosis groups follow Strack et al. 2014 (BioMed Research International 781670),
the grouping used throughout the literature on this dataset.
"""

from __future__ import annotations

from typing import Final

from readmit_core.features import MISSING_CATEGORY

ICD9_SYSTEM: Final = "http://hl7.org/fhir/sid/icd-9-cm"

# Sub-codes the dataset keeps although it is not 250.xx (seen in the development data).
_DATASET_SUBCODES: Final = frozenset({"365.44"})

DIAGNOSIS_GROUPS: Final = (
    "Circulatory",
    "Respiratory",
    "Digestive",
    "Diabetes",
    "Injury",
    "Musculoskeletal",
    "Genitourinary",
    "Neoplasms",
    "Other",
    "Missing",
)


def _split(code: str) -> tuple[str, str]:
    code = code.strip().upper()
    if "." in code:
        head, _, tail = code.partition(".")
        return head, tail
    # Undotted form (e.g. "25083", "E9090"): category is 3 characters (4 for E codes).
    width = 4 if code.startswith("E") else 3
    return code[:width], code[width:]


def dataset_code(code: str) -> str:
    """An ICD-9-CM code (canonical or dataset form) as the dataset writes it."""
    head, tail = _split(code)
    if not head:
        return MISSING_CATEGORY
    if head.isdigit():
        head = head.lstrip("0") or "0"
    if head == "250":
        tail = tail.rstrip("0")
        return f"250.{tail}" if tail else "250"
    full = f"{head}.{tail}" if tail else head
    return full if full in _DATASET_SUBCODES else head


def canonical_code(code: str) -> str:
    """A dataset ICD-9-CM code in canonical form (``38`` -> ``038``, ``250`` -> ``250.00``)."""
    head, _, tail = code.strip().upper().partition(".")
    if head.isdigit():
        head = head.zfill(3)
    if head == "250":
        return f"250.{tail.ljust(2, '0')}"
    return f"{head}.{tail}" if tail else head


def diagnosis_group(icd9_code: str) -> str:
    """The literature's diagnosis group of an ICD-9-CM code (either spelling).

    ``?``/empty -> ``Missing``; V and E codes -> ``Other``.
    """
    code = icd9_code.strip().upper()
    if not code or code == MISSING_CATEGORY:
        return "Missing"
    if code[0] in "VE":
        return "Other"
    head = code.partition(".")[0]
    try:
        value = int(head)
    except ValueError:
        return "Other"
    if value == 250:
        return "Diabetes"
    if 390 <= value <= 459 or value == 785:
        return "Circulatory"
    if 460 <= value <= 519 or value == 786:
        return "Respiratory"
    if 520 <= value <= 579 or value == 787:
        return "Digestive"
    if 800 <= value <= 999:
        return "Injury"
    if 710 <= value <= 739:
        return "Musculoskeletal"
    if 580 <= value <= 629 or value == 788:
        return "Genitourinary"
    if 140 <= value <= 239:
        return "Neoplasms"
    return "Other"
