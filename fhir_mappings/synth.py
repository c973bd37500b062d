"""Dataset row -> a realistic FHIR R4 transaction Bundle (demo feed, load generator, oracle).

Each row becomes one transaction Bundle: the Patient (US Core race/ethnicity, a
birthDate inside the age band), the ward Location, the index Encounter (period whose
calendar-day length is ``time_in_hospital``, priority, admit source, discharge
disposition, specialty, ranked diagnoses), prior-year Encounters matching the
utilisation counts, Conditions, laboratory Observations (values drawn inside the
row's bands, ``num_lab_procedures`` in total), Procedures, MedicationRequests with
doses (and ``priorPrescription`` carrying the dose direction), and Coverage. Every
reference is a ``urn:uuid:`` fullUrl inside the Bundle. Output depends only on the
row and the seed (``random.Random(f"{seed}:{encounter_id}")``), so any subset of rows
is reproducible on its own. Admission dates grow with the dataset's encounter id
(1999-2008, the dataset's years), so a patient's stays keep their order.
"""

from __future__ import annotations

import csv
import gzip
import io
import random
import uuid
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

from fhir_mappings.codes import nubc
from fhir_mappings.codes.icd9 import ICD9_SYSTEM, canonical_code
from fhir_mappings.codes.loinc import LAB_PANEL, LOINC_SYSTEM, UCUM_SYSTEM
from fhir_mappings.codes.project_codesystems import (
    ADMISSION_SOURCE_SYSTEM,
    ADMISSION_TYPE_SYSTEM,
    DISCHARGE_DISPOSITION_SYSTEM,
    PAYER_SYSTEM,
    SOPT_BY_PAYER,
    SOPT_SYSTEM,
    SPECIALTY_SYSTEM,
    WARD_IDENTIFIER_SYSTEM,
)
from fhir_mappings.codes.race_ethnicity import race_extensions
from fhir_mappings.codes.rxnorm import (
    BASE_DOSE,
    COMBINATIONS,
    FILLER_DRUGS,
    INGREDIENT,
    RXNORM_SYSTEM,
    medication_codings,
)
from fhir_mappings.codes.structural import (
    ACT_CODE_SYSTEM,
    CONDITION_CATEGORY_SYSTEM,
    CONDITION_CLINICAL_SYSTEM,
    CONDITION_VERIFICATION_SYSTEM,
    DIAGNOSIS_ROLE_SYSTEM,
    ENCOUNTER_DIAGNOSIS,
    INPATIENT_CLASS,
    LABORATORY,
    LOCATION_TYPE_SYSTEM,
    OBSERVATION_CATEGORY_SYSTEM,
    WARD,
)
from fhir_mappings.codes.wards import ward_for
from readmit_core.features import MEDICATION_COLUMNS, MISSING_CATEGORY, MISSING_LAB

MRN_SYSTEM: Final = "https://readmit.example.org/fhir/sid/mrn"
TZ: Final = timezone(timedelta(hours=-5))
FIRST_DAY: Final = date(1999, 1, 4)
MAX_ENCOUNTER_ID: Final = 443_867_222
SPAN_DAYS: Final = 3640

# Comorbidity codes for diagnoses ranked 4 and later (dataset spelling).
EXTRA_DIAGNOSES: Final = (
    "401", "272", "414", "428", "427", "276", "250", "V45", "403", "585", "496", "278",
    "599", "285", "305", "V58", "530", "311", "244", "584", "518", "707", "V43", "780",
    "593", "V15", "412", "424", "600", "416",
)  # fmt: skip
# ICD-9-CM volume 3 procedure codes used for synthesized Procedures.
PROCEDURES: Final = (
    ("88.72", "Diagnostic ultrasound of heart"), ("99.04", "Transfusion of packed cells"),
    ("38.93", "Venous catheterization"), ("87.44", "Routine chest x-ray"),
    ("45.13", "Esophagogastroduodenoscopy"), ("88.56", "Coronary arteriography"),
    ("39.95", "Hemodialysis"), ("96.04", "Insertion of endotracheal tube"),
    ("57.94", "Insertion of indwelling urinary catheter"), ("93.90", "Non-invasive ventilation"),
    ("81.54", "Total knee replacement"), ("86.22", "Excisional debridement of wound"),
)  # fmt: skip
GLUCOSE_RANGES: Final = {"Norm": (70, 199), ">200": (201, 299), ">300": (301, 600)}
HBA1C_RANGES: Final = {"Norm": (45, 69), ">7": (71, 79), ">8": (81, 140)}  # tenths of %
GENDER: Final = {"Female": "female", "Male": "male"}
SWITCH_FROM: Final = ("glyburide", "glipizide", "metformin", "glimepiride", "pioglitazone")


def _admission(encounter_id: str, rng: random.Random) -> datetime:
    try:
        fraction = min(max(int(encounter_id), 0), MAX_ENCOUNTER_ID) / MAX_ENCOUNTER_ID
    except ValueError:
        fraction = rng.random()
    day = FIRST_DAY + timedelta(days=int(fraction * SPAN_DAYS))
    if (day.month, day.day) == (2, 29):
        day -= timedelta(days=1)
    return datetime(day.year, day.month, day.day, rng.randint(0, 11), rng.randint(0, 59), tzinfo=TZ)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class _Builder:
    """Accumulates the entries of one transaction Bundle."""

    def __init__(self, row: Mapping[str, str], seed: int) -> None:
        self.row = row
        self.rng = random.Random(f"{seed}:{row['encounter_id']}")
        self.entries: list[dict[str, Any]] = []
        self.admitted = _admission(row["encounter_id"], self.rng)
        los = int(row["time_in_hospital"])
        end_day = self.admitted + timedelta(days=los)
        self.discharged = end_day.replace(hour=self.rng.randint(12, 20))

    def uuid(self) -> str:
        return f"urn:uuid:{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"

    def add(self, resource: dict[str, Any]) -> dict[str, str]:
        """Add an entry (PUT when it has an id, else POST); return a Reference to it."""
        url = self.uuid()
        rtype = resource["resourceType"]
        request = (
            {"method": "PUT", "url": f"{rtype}/{resource['id']}"}
            if "id" in resource
            else {"method": "POST", "url": rtype}
        )
        self.entries.append({"fullUrl": url, "resource": resource, "request": request})
        return {"reference": url}

    def during_stay(self) -> datetime:
        span = (self.discharged - self.admitted).total_seconds()
        return self.admitted + timedelta(seconds=self.rng.uniform(0, span))

    # --- resources ------------------------------------------------------------------
    def patient(self) -> dict[str, str]:
        row = self.row
        resource: dict[str, Any] = {
            "resourceType": "Patient",
            "id": row["patient_nbr"],
            "identifier": [{"system": MRN_SYSTEM, "value": row["patient_nbr"]}],
            "gender": GENDER.get(row["gender"], "unknown"),
        }
        extensions = race_extensions(row["race"])
        if extensions:
            resource["extension"] = extensions
        if row["age"].startswith("["):
            low = int(row["age"][1:].split("-")[0])
            age = low + self.rng.randint(0, 9)
            day = self.admitted.date()
            born = date(day.year - age, day.month, day.day) - timedelta(
                days=self.rng.randint(1, 360)
            )
            resource["birthDate"] = born.isoformat()
        return self.add(resource)

    def location(self) -> dict[str, str]:
        ward = ward_for(self.row["medical_specialty"], self.row["age"])
        ref = self.add(
            {
                "resourceType": "Location",
                "id": ward.id,
                "identifier": [{"system": WARD_IDENTIFIER_SYSTEM, "value": ward.code}],
                "status": "active",
                "name": f"{ward.name} ward",
                "mode": "instance",
                "physicalType": {"coding": [{"system": LOCATION_TYPE_SYSTEM, "code": WARD}]},
            }
        )
        return ref

    def conditions(self, patient: dict[str, str]) -> list[dict[str, Any]]:
        """Encounter.diagnosis entries (Conditions added to the Bundle)."""
        row = self.row
        count = int(row["number_diagnoses"])
        used = {row[f"diag_{k}"] for k in (1, 2, 3)}
        extras = [c for c in EXTRA_DIAGNOSES if c not in used]
        self.rng.shuffle(extras)
        out = []
        for rank in range(1, count + 1):
            code = row[f"diag_{rank}"] if rank <= 3 else extras[(rank - 4) % len(extras)]
            concept: dict[str, Any] = (
                {"text": "Diagnosis recorded without a code"}
                if code == MISSING_CATEGORY
                else {"coding": [{"system": ICD9_SYSTEM, "code": canonical_code(code)}]}
            )
            ref = self.add(
                {
                    "resourceType": "Condition",
                    "clinicalStatus": {
                        "coding": [{"system": CONDITION_CLINICAL_SYSTEM, "code": "active"}]
                    },
                    "verificationStatus": {
                        "coding": [{"system": CONDITION_VERIFICATION_SYSTEM, "code": "confirmed"}]
                    },
                    "category": [
                        {
                            "coding": [
                                {"system": CONDITION_CATEGORY_SYSTEM, "code": ENCOUNTER_DIAGNOSIS}
                            ]
                        }
                    ],
                    "code": concept,
                    "subject": patient,
                    "encounter": {"reference": self.encounter_url},
                    "recordedDate": _iso(self.during_stay()),
                }
            )
            use = "AD" if rank == 1 else "DD"
            out.append(
                {
                    "condition": ref,
                    "use": {
                        "coding": [
                            {
                                "system": DIAGNOSIS_ROLE_SYSTEM,
                                "code": use,
                            }
                        ]
                    },
                    "rank": rank,
                }
            )
        return out

    def encounter(self, patient: dict[str, str], location: dict[str, str]) -> None:
        row = self.row
        self.encounter_url = self.uuid()
        resource: dict[str, Any] = {
            "resourceType": "Encounter",
            "id": row["encounter_id"],
            "status": "finished",
            "class": {
                "system": ACT_CODE_SYSTEM,
                "code": INPATIENT_CLASS,
                "display": "inpatient encounter",
            },
            "subject": patient,
            "period": {"start": _iso(self.admitted), "end": _iso(self.discharged)},
        }
        admission_type = int(row["admission_type_id"])
        if admission_type != nubc.ADMISSION_TYPE_MISSING:
            resource["priority"] = {
                "coding": [
                    nubc.coding_for(
                        admission_type,
                        nubc.ADMISSION_TYPE_TO_NUBC,
                        nubc.NUBC_PRIORITY_SYSTEM,
                        ADMISSION_TYPE_SYSTEM,
                    )
                ]
            }
        if row["medical_specialty"] != MISSING_CATEGORY:
            resource["serviceType"] = {
                "coding": [{"system": SPECIALTY_SYSTEM, "code": row["medical_specialty"]}],
                "text": row["medical_specialty"],
            }
        hospitalization: dict[str, Any] = {}
        source = int(row["admission_source_id"])
        if source != nubc.ADMISSION_SOURCE_MISSING:
            hospitalization["admitSource"] = {
                "coding": [
                    nubc.coding_for(
                        source,
                        nubc.ADMISSION_SOURCE_TO_NUBC,
                        nubc.NUBC_POINT_OF_ORIGIN_SYSTEM,
                        ADMISSION_SOURCE_SYSTEM,
                    )
                ]
            }
        disposition = int(row["discharge_disposition_id"])
        if disposition != nubc.DISCHARGE_MISSING:
            hospitalization["dischargeDisposition"] = {
                "coding": [
                    nubc.coding_for(
                        disposition,
                        nubc.DISCHARGE_TO_NUBC,
                        nubc.NUBC_DISCHARGE_SYSTEM,
                        DISCHARGE_DISPOSITION_SYSTEM,
                    )
                ]
            }
        if hospitalization:
            resource["hospitalization"] = hospitalization
        diagnoses = self.conditions(patient)
        if diagnoses:
            resource["diagnosis"] = diagnoses
        resource["location"] = [
            {
                "location": location,
                "status": "completed",
                "period": {"start": _iso(self.admitted), "end": _iso(self.discharged)},
            }
        ]
        self.entries.append(
            {
                "fullUrl": self.encounter_url,
                "resource": resource,
                "request": {"method": "PUT", "url": f"Encounter/{row['encounter_id']}"},
            }
        )

    def prior_visits(self, patient: dict[str, str]) -> None:
        row = self.row
        plan = (
            [("AMB", "ambulatory")] * int(row["number_outpatient"])
            + [("EMER", "emergency")] * int(row["number_emergency"])
            + [(INPATIENT_CLASS, "inpatient encounter")] * int(row["number_inpatient"])
        )
        for i, (code, display) in enumerate(plan):
            start = self.admitted - timedelta(
                days=self.rng.randint(2, 363), hours=self.rng.randint(0, 23)
            )
            length = {"AMB": timedelta(hours=1), "EMER": timedelta(hours=5)}.get(
                code, timedelta(days=self.rng.randint(1, 6))
            )
            end = min(start + length, self.admitted - timedelta(hours=1))
            self.add(
                {
                    "resourceType": "Encounter",
                    "id": f"{row['encounter_id']}-prior-{i + 1}",
                    "status": "finished",
                    "class": {"system": ACT_CODE_SYSTEM, "code": code, "display": display},
                    "subject": patient,
                    "period": {"start": _iso(start), "end": _iso(end)},
                }
            )

    def _observation(
        self,
        patient: dict[str, str],
        code: str,
        display: str,
        value: float,
        unit: str,
        category: str = LABORATORY,
    ) -> None:
        self.add(
            {
                "resourceType": "Observation",
                "status": "final",
                "category": [
                    {"coding": [{"system": OBSERVATION_CATEGORY_SYSTEM, "code": category}]}
                ],
                "code": {"coding": [{"system": LOINC_SYSTEM, "code": code, "display": display}]},
                "subject": patient,
                "encounter": {"reference": self.encounter_url},
                "effectiveDateTime": _iso(self.during_stay()),
                "valueQuantity": {
                    "value": value,
                    "unit": unit,
                    "system": UCUM_SYSTEM,
                    "code": unit,
                },
            }
        )

    def observations(self, patient: dict[str, str]) -> None:
        row = self.row
        remaining = int(row["num_lab_procedures"])
        if row["max_glu_serum"] != MISSING_LAB:
            low, high = GLUCOSE_RANGES[row["max_glu_serum"]]
            self._observation(
                patient,
                "2345-7",
                "Glucose [Mass/volume] in Serum or Plasma",
                float(self.rng.randint(low, high)),
                "mg/dL",
            )
            remaining -= 1
        if row["A1Cresult"] != MISSING_LAB:
            low, high = HBA1C_RANGES[row["A1Cresult"]]
            self._observation(
                patient,
                "4548-4",
                "Hemoglobin A1c/Hemoglobin.total in Blood",
                self.rng.randint(low, high) / 10,
                "%",
            )
            remaining -= 1
        for _ in range(max(remaining, 0)):
            code, display, unit, low_v, high_v = self.rng.choice(LAB_PANEL)
            self._observation(
                patient, code, display, round(self.rng.uniform(low_v, high_v), 1), unit
            )
        weight = row["weight"]
        if weight != MISSING_CATEGORY:
            if weight == ">200":
                kg = round(self.rng.uniform(200.5, 250.0), 1)
            else:
                low = int(weight[1:].split("-")[0])
                kg = round(low + self.rng.uniform(0.5, 24.4), 1)
            self._observation(patient, "29463-7", "Body weight", kg, "kg", "vital-signs")

    def procedures(self, patient: dict[str, str]) -> None:
        for _ in range(int(self.row["num_procedures"])):
            code, display = self.rng.choice(PROCEDURES)
            self.add(
                {
                    "resourceType": "Procedure",
                    "status": "completed",
                    "code": {"coding": [{"system": ICD9_SYSTEM, "code": code, "display": display}]},
                    "subject": patient,
                    "encounter": {"reference": self.encounter_url},
                    "performedDateTime": _iso(self.during_stay()),
                }
            )

    def _medication_concept(self, column: str) -> dict[str, Any]:
        """medication[x] of a request: a CodeableConcept, or a combination Medication."""
        if column in COMBINATIONS:
            a, b = COMBINATIONS[column]
            ref = self.add(
                {
                    "resourceType": "Medication",
                    "code": {"text": f"{a} / {b}"},
                    "ingredient": [
                        {
                            "itemCodeableConcept": {
                                "coding": [
                                    {"system": RXNORM_SYSTEM, "code": INGREDIENT[x], "display": x}
                                ]
                            },
                            "isActive": True,
                        }
                        for x in (a, b)
                    ],
                }
            )
            return {"medicationReference": ref}
        return {"medicationCodeableConcept": {"coding": medication_codings(column), "text": column}}

    def _request(
        self,
        patient: dict[str, str],
        column: str,
        dose: float | None,
        *,
        in_stay: bool,
        prior: dict[str, str] | None = None,
    ) -> dict[str, str]:
        resource: dict[str, Any] = {
            "resourceType": "MedicationRequest",
            "status": "completed" if in_stay else "stopped",
            "intent": "order",
            **self._medication_concept(column),
            "subject": patient,
        }
        if in_stay:
            resource["encounter"] = {"reference": self.encounter_url}
            resource["authoredOn"] = _iso(self.during_stay())
        else:
            resource["authoredOn"] = _iso(self.admitted - timedelta(days=self.rng.randint(30, 300)))
        if dose is not None:
            _, unit, per_day = BASE_DOSE.get(column, (1.0, "{tbl}", 1))
            resource["dosageInstruction"] = [
                {
                    "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                    "doseAndRate": [
                        {
                            "doseQuantity": {
                                "value": dose,
                                "unit": unit,
                                "system": UCUM_SYSTEM,
                                "code": unit,
                            }
                        }
                    ],
                }
            ]
        if prior is not None:
            resource["priorPrescription"] = prior
        return self.add(resource)

    def medications(self, patient: dict[str, str]) -> None:
        row = self.row
        given = [c for c in MEDICATION_COLUMNS if row[c] != "No"]
        switch = None
        if row["change"] == "Ch" and not any(row[c] in ("Up", "Down") for c in given):
            switch = next(c for c in given if row[c] == "Steady")
        for column in given:
            base = BASE_DOSE.get(column, (1.0, "{tbl}", 1))[0]
            direction = row[column]
            if column == switch:
                old = next(c for c in SWITCH_FROM if row[c] == "No")
                replaced = self._request(patient, old, BASE_DOSE[old][0], in_stay=False)
                self._request(patient, column, base, in_stay=True, prior=replaced)
                continue
            before, now = {"Up": (base, base * 2), "Down": (base * 2, base)}.get(
                direction, (base, base)
            )
            prior: dict[str, str] | None = None
            if direction != "Steady" or self.rng.random() < 0.5:
                prior = self._request(patient, column, before, in_stay=False)
            self._request(patient, column, now, in_stay=True, prior=prior)
        fillers = self.rng.sample(FILLER_DRUGS, int(row["num_medications"]) - len(given))
        for code, name in fillers:
            self.add(
                {
                    "resourceType": "MedicationRequest",
                    "status": "completed",
                    "intent": "order",
                    "medicationCodeableConcept": {
                        "coding": [{"system": RXNORM_SYSTEM, "code": code, "display": name}],
                        "text": name,
                    },
                    "subject": patient,
                    "encounter": {"reference": self.encounter_url},
                    "authoredOn": _iso(self.during_stay()),
                }
            )

    def coverage(self, patient: dict[str, str]) -> None:
        payer = self.row["payer_code"]
        if payer == MISSING_CATEGORY:
            return
        codings = [{"system": PAYER_SYSTEM, "code": payer}]
        if payer in SOPT_BY_PAYER:
            code, display = SOPT_BY_PAYER[payer]
            codings.append({"system": SOPT_SYSTEM, "code": code, "display": display})
        self.add(
            {
                "resourceType": "Coverage",
                "status": "active",
                "type": {"coding": codings},
                "beneficiary": patient,
                "payor": [{"display": f"Payer {payer}"}],
                "period": {"start": (self.admitted.date() - timedelta(days=730)).isoformat()},
            }
        )

    def build(self) -> dict[str, Any]:
        patient = self.patient()
        location = self.location()
        self.encounter(patient, location)
        self.prior_visits(patient)
        self.observations(patient)
        self.procedures(patient)
        self.medications(patient)
        self.coverage(patient)
        return {"resourceType": "Bundle", "type": "transaction", "entry": self.entries}


def synthesize_bundle(row: Mapping[str, str], *, seed: int) -> dict[str, Any]:
    """One dataset row (CSV strings) -> an R4 transaction Bundle (JSON-ready dict)."""
    return _Builder(row, seed).build()


def read_rows(csv_path: str | Path, limit: int | None = None) -> Iterator[dict[str, str]]:
    """Rows of the dataset CSV (optionally gzipped), as strings, in file order."""
    path = Path(csv_path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        for i, row in enumerate(csv.DictReader(text)):
            if limit is not None and i >= limit:
                return
            yield row


def iter_bundles(
    csv_path: str | Path, seed: int = 0, limit: int | None = None
) -> Iterator[dict[str, Any]]:
    """Bundles of the first ``limit`` rows of a dataset CSV (all rows when None)."""
    for row in read_rows(csv_path, limit):
        yield synthesize_bundle(row, seed=seed)
