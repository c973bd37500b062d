"""FHIR document -> one feature record per finished inpatient index Encounter.

Index encounters: the finished inpatient (IMP/ACUTE/NONAC) Encounters a message or
notification names as its focus; without a declared focus, the latest finished
inpatient stay of each patient in the document (earlier stays of the same patient are
history, not something to score again). Everything else a document holds is context:
prior visits, and the clinical resources of the stay, linked by their ``encounter``
reference (or, without one, by patient and a time inside the stay).

The rules per column are in CONTRACT.md; the per-resource logic lives in patient.py,
encounter.py, condition.py, observation.py, medication.py, procedure.py, coverage.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import orjson

from fhir_mappings import condition as cond_rules
from fhir_mappings import coverage as coverage_rules
from fhir_mappings import encounter as enc_rules
from fhir_mappings import medication as med_rules
from fhir_mappings import patient as patient_rules
from fhir_mappings.bundle import Document, Resource, identifier_keys, load_json
from fhir_mappings.codes.nubc import (
    ADMISSION_SOURCE_MISSING,
    ADMISSION_TYPE_MISSING,
    DISCHARGE_MISSING,
)
from fhir_mappings.codes.structural import (
    EMERGENCY,
    ENCOUNTER_DIAGNOSIS,
    INPATIENT,
    OUTPATIENT,
    PROBLEM_LIST,
)
from fhir_mappings.condition import concept_code, diagnosis_code
from fhir_mappings.dates import effective_time, latest_datetime, local_date, parse_datetime
from fhir_mappings.errors import FhirMappingError, ImpossibleDates, MissingPatient, RefusedStay
from fhir_mappings.history import history_features
from fhir_mappings.identity import (
    ID_SYSTEM,
    IdentityClaim,
    LocalIdentities,
    VisitIdentities,
    business_identifier,
    identity_key,
    own_id,
    patient_scoped,
)
from fhir_mappings.medication import MedicationSummary
from fhir_mappings.observation import LabSummary
from fhir_mappings.prior_visits import (
    BatchedHistory,
    EncounterHistory,
    PriorStay,
    VisitSummary,
    admission_order,
    combine_stays,
    combine_visits,
)
from fhir_mappings.procedure import counts as procedure_counts
from fhir_mappings.references import reference_key
from readmit_core.events import UNASSIGNED
from readmit_core.features import (
    MEDICATION_COLUMNS,
    MEDICATION_NOT_GIVEN,
    MISSING_CATEGORY,
    MISSING_LAB,
    FeatureRecord,
)

PRIOR_WINDOW: Final = timedelta(days=365)
# where each clinical resource type names the stay it belongs to
ENCOUNTER_LINK: Final = {
    "Condition": "encounter",
    "Observation": "encounter",
    "Procedure": "encounter",
    "MedicationRequest": "encounter",
    "MedicationAdministration": "context",
    "MedicationStatement": "context",
}
MAX_DIAGNOSES: Final = 16  # the dataset's largest number_diagnoses
MAX_DOCUMENT_PRIOR_STAYS: Final = 100  # latest earlier stays of a document mapped as history
_EPOCH: Final = datetime.min


@dataclass(frozen=True)
class MappedEncounter:
    """The feature record of one index encounter, with what the pipeline needs around it."""

    encounter_id: str
    patient_id: str
    ward: str
    input_key: str
    admitted_at: datetime | None
    discharged_at: datetime | None
    record: FeatureRecord
    missing: tuple[str, ...]
    visits: tuple[VisitSummary, ...]
    # the index Encounter as this document names it (its id, fullUrl): ``encounter_id``
    # is the visit's canonical id, which differs when the visit was first sent under
    # another id (fhir_mappings.identity)
    resource_id: str = ""
    full_url: str | None = None


def map_document(
    doc: bytes | str | dict[str, Any],
    *,
    history: EncounterHistory | None = None,
    identities: VisitIdentities | None = None,
    own_entries: int | None = None,
) -> list[MappedEncounter]:
    """Map one FHIR document; raises a :class:`~fhir_mappings.errors.FhirMappingError`
    subclass for input we refuse (never anything else), with the entry it is about.

    ``identities`` gives each Encounter and Patient its canonical id (the id the visit
    or patient was first known by); without it each is its own id. ``own_entries``:
    only Encounters of the first that many entries can be index stays (ingest appends
    stored resources after what the sender sent: context, never a stay to score)."""
    document = Document(load_json(doc), own_entries=own_entries)
    return _Mapper(document, history, identities).run()


def map_entries(
    doc: dict[str, Any],
    *,
    history: EncounterHistory | None = None,
    identities: VisitIdentities | None = None,
    own_entries: int | None = None,
) -> tuple[list[MappedEncounter], dict[int, FhirMappingError]]:
    """:func:`map_document` for a batch, whose entries stand alone: an entry with a
    reference problem, an index Encounter that cannot be mapped (no Patient,
    impossible dates, ...) and the entries that belong to it are refused by entry
    index, the rest is mapped. Linear: each stay is mapped once, reference problems are
    found in one pass per round of dropped entries, never by re-mapping the document.
    An error that names no entry still refuses the whole document."""
    document = Document(load_json(doc), own_entries=own_entries, lenient=True)
    mapper = _Mapper(document, history, identities, lenient=True)
    mapped = mapper.run()
    problems = {**document.problems, **mapper.problems}
    # a stored resource ingest completed the batch with is not the sender's to answer
    # for: left out (as above), not reported
    own = own_entries if own_entries is not None else len(doc.get("entry") or [])
    return mapped, {i: exc for i, exc in problems.items() if i < own}


def map_trusted_document(
    doc: bytes | str | dict[str, Any], *, history: EncounterHistory | None = None
) -> list[MappedEncounter]:
    """:func:`map_document` without the fhir.resources validation pass.

    Only for documents this process produced itself (parity over the whole dataset,
    measuring the mapping rules apart from validation): validation never changes a
    feature value, it only refuses input. Never use it on received data.
    """
    document = Document(load_json(doc), validate=False)
    return _Mapper(document, history).run()


def _resource_id(resource: Resource, document: Document) -> str:
    """Logical id; for id-less entries an identifier value or the fullUrl's uuid."""
    own = own_id(resource)
    if own is not None:
        return own
    url = document.full_url(resource) or ""
    return url.rsplit(":", 1)[-1] or "unknown"


def _distinct(encounters: list[Resource]) -> list[Resource]:
    """The document's Encounters, one per visit: an Encounter sharing an identifier
    (system and value: the visit number) with an earlier one in the document is the same
    visit sent again under another id (an export merged from two feeds) and is dropped,
    so it neither counts twice as a prior visit nor becomes its own history."""
    seen: set[tuple[Any, str]] = set()
    out = []
    for encounter in encounters:
        keys = identifier_keys(encounter)
        if any(key in seen for key in keys):
            continue
        seen.update(keys)
        out.append(encounter)
    return out


class _Mapper:
    def __init__(
        self,
        document: Document,
        history: EncounterHistory | None,
        identities: VisitIdentities | None = None,
        *,
        lenient: bool = False,
    ) -> None:
        self.doc = document
        self.history = history
        self.lenient = lenient
        self.problems: dict[int, FhirMappingError] = {}  # lenient: refused entries
        self.encounters = _distinct(document.of_type("Encounter"))
        self._canonical = self._canonical_ids(identities or LocalIdentities())
        self.patient_of: dict[int, tuple[str, Resource | None]] = {}
        for encounter in list(self.encounters):
            try:
                found = self._patient(encounter)
            except FhirMappingError as exc:
                self._refuse(encounter, exc)
                self.encounters.remove(encounter)
                continue
            if found is not None:
                self.patient_of[id(encounter)] = found
        # visits this send names only by an id (no business identifier): the store may
        # know them under another id (prior_visits.combine_visits)
        self.unidentified = {
            self._id("Encounter", e) for e in self.encounters if business_identifier(e) is None
        }
        if isinstance(history, BatchedHistory):
            self.history = history.for_patients(sorted({p for p, _ in self.patient_of.values()}))

    # --- document level -------------------------------------------------------------
    def _canonical_ids(self, identities: VisitIdentities) -> dict[tuple[str, str], str]:
        """("Encounter"|"Patient", local id) -> canonical id, for every Encounter and
        Patient of the document and every Patient id an unresolved subject names.

        Patients first, then Encounters keyed within their patient's canonical id
        (:func:`patient_scoped`): two round trips, so that a visit number reused for
        another patient can never name this patient's visit."""
        patients: list[IdentityClaim] = []
        for resource in self.doc.of_type("Patient"):
            local = _resource_id(resource, self.doc)
            key = identity_key(resource, local)
            patients.append(IdentityClaim("Patient", local, key, has_id=bool(resource.get("id"))))
        for encounter in self.encounters:
            ref = encounter.get("subject")
            try:
                resolved = self.doc.resolve(ref, encounter) is not None
            except FhirMappingError:
                resolved = True  # refused later, where the index stay is mapped
            pid = None if resolved else self.doc.external_id(ref)
            if pid:
                patients.append(IdentityClaim("Patient", pid, (ID_SYSTEM, pid)))
        out = self._claim(identities, patients)
        encounters: list[IdentityClaim] = []
        for resource in self.doc.of_type("Encounter"):
            local = _resource_id(resource, self.doc)
            patient = self._subject_id(resource, out)
            key = patient_scoped(identity_key(resource, local), patient)
            encounters.append(
                IdentityClaim("Encounter", local, key, has_id=bool(resource.get("id")))
            )
        out.update(self._claim(identities, encounters))
        return out

    @staticmethod
    def _claim(
        identities: VisitIdentities, claims: list[IdentityClaim]
    ) -> dict[tuple[str, str], str]:
        ids = identities.canonical_ids(claims) if claims else []
        return {(c.kind, c.local_id): cid for c, cid in zip(claims, ids, strict=True)}

    def _subject_id(self, encounter: Resource, canonical: dict[tuple[str, str], str]) -> str | None:
        """The canonical id of an Encounter's patient, or None (no or unusable subject)."""
        ref = encounter.get("subject")
        if not ref:
            return None
        try:
            target = self.doc.resolve(ref, encounter)
        except FhirMappingError:
            return None
        if target is not None:
            if target.get("resourceType") != "Patient":
                return None
            local = _resource_id(target, self.doc)
        else:
            local = self.doc.external_id(ref) or ""
        return canonical.get(("Patient", local), local) or None

    def _id(self, kind: str, resource: Resource) -> str:
        local = _resource_id(resource, self.doc)
        return self._canonical.get((kind, local), local)

    def _patient(
        self, holder: Resource, key: str = "subject"
    ) -> tuple[str, Resource | None] | None:
        ref = holder.get(key)
        if not ref:
            return None
        target = self.doc.resolve(ref, holder)
        if target is not None:
            if target.get("resourceType") != "Patient":
                return None
            return self._id("Patient", target), target
        ref_str = str(ref.get("reference") or "")
        if ref_str and ref_str.split("/_history/")[0].rsplit("/", 2)[-2:-1] != ["Patient"]:
            return None
        pid = self.doc.external_id(ref)
        return (self._canonical.get(("Patient", pid), pid), None) if pid else None

    def _visits(self, index: list[Resource]) -> list[VisitSummary]:
        index_ids = {id(e) for e in index}
        out: list[VisitSummary] = []
        for encounter in self.encounters:
            found = self.patient_of.get(id(encounter))
            period = encounter.get("period") or {}
            start = parse_datetime(period.get("start"))
            if found is None or start is None or encounter.get("status") in enc_rules.NOT_A_VISIT:
                continue
            out.append(
                VisitSummary(
                    encounter_id=self._id("Encounter", encounter),
                    patient_id=found[0],
                    class_code=enc_rules.class_code(encounter),
                    start=start,
                    end=parse_datetime(period.get("end")),
                    is_index=id(encounter) in index_ids,
                )
            )
        return out

    def _index(self) -> list[Resource]:
        candidates = [e for e in self.encounters if enc_rules.is_index(e) and self.doc.is_own(e)]
        focus = [self.doc.resolve(ref, {}) for ref in self.doc.focus if ref.get("reference")]
        focused = {id(f) for f in focus if f is not None and f.get("resourceType") == "Encounter"}
        if focused:
            return [c for c in candidates if id(c) in focused]
        latest: dict[str, Resource] = {}
        for encounter in candidates:
            found = self.patient_of.get(id(encounter))
            key = found[0] if found else f"no-patient-{id(encounter)}"
            current = latest.get(key)
            if current is None or self._start_key(encounter) >= self._start_key(current):
                latest[key] = encounter
        chosen = {id(e) for e in latest.values()}
        return [c for c in candidates if id(c) in chosen]

    @staticmethod
    def _start_key(encounter: Resource) -> datetime:
        period = encounter.get("period") or {}
        parsed = parse_datetime(period.get("start") or period.get("end"))
        return parsed.replace(tzinfo=None) if parsed else _EPOCH

    def run(self) -> list[MappedEncounter]:
        index = self._index()
        mapped = []
        if index:
            visits = self._visits(index)
            for encounter in index:
                try:
                    mapped.append(self._map(encounter, visits))
                except FhirMappingError as exc:
                    self._refuse(encounter, exc)
        if self.problems:
            self._refuse_dependents()
        return mapped

    def _refuse(self, encounter: Resource, exc: FhirMappingError) -> None:
        """Name the Encounter's entry on the error; raise it, or (lenient) record it when
        the Encounter is an entry the sender sent (else nothing can be refused alone)."""
        index = self.doc.entry_index(encounter)
        if exc.entry_index is None:
            exc.entry_index = index
            if index is not None and not exc.message.startswith("Bundle.entry["):
                exc.message = f"Bundle.entry[{index}]: {exc.message}"
        if not self.lenient or exc.entry_index is None or not self.doc.is_own(encounter):
            raise exc
        self.problems.setdefault(exc.entry_index, exc)

    def _refuse_dependents(self) -> None:
        """Lenient: the entries that belong to a refused Encounter (their encounter
        reference names it) are refused with it, so no part of a refused stay is kept.
        One pass over the document, only when a stay was refused."""
        refused: set[str] = set()
        for encounter in self.doc.of_type("Encounter"):
            at = self.doc.entry_index(encounter)
            if at is None or at not in self.problems:
                continue
            names = [self.doc.full_url(encounter)]
            if encounter.get("id"):
                names.append(f"Encounter/{encounter['id']}")
            refused.update(name for name in names if name)
        if not refused:
            return
        for resource in self.doc:
            at = self.doc.entry_index(resource)
            element = ENCOUNTER_LINK.get(str(resource.get("resourceType")))
            link = resource.get(element) if element else None
            target = link.get("reference") if isinstance(link, dict) else None
            if at is None or at in self.problems or not isinstance(target, str):
                continue
            if not self.doc.is_own(resource):
                continue
            if target in refused or (reference_key(target) or "") in refused:
                self.problems[at] = RefusedStay(
                    f"Bundle.entry[{at}]: the Encounter it belongs to ({target}) was refused",
                    resource_type=str(resource.get("resourceType")),
                    element=element,
                    entry_index=at,
                )

    # --- one index encounter -----------------------------------------------------------
    def _map(
        self, encounter: Resource, visits: list[VisitSummary], *, with_history: bool = True
    ) -> MappedEncounter:
        found = self.patient_of.get(id(encounter))
        if found is None:
            raise MissingPatient(
                "index Encounter has no Patient subject",
                resource_type="Encounter",
                element="subject",
            )
        patient_id, patient = found
        encounter_id = self._id("Encounter", encounter)
        period = encounter.get("period") or {}
        admitted = parse_datetime(period.get("start"))
        discharged = latest_datetime(period.get("end"))
        if admitted and discharged and discharged < admitted:
            raise ImpossibleDates(
                "discharge (period.end) is before admission (period.start)",
                resource_type="Encounter",
                element="period.end",
            )
        local_patient = (
            _resource_id(patient, self.doc)
            if patient is not None
            else self.doc.external_id(encounter.get("subject"))
        )
        stay = _Stay(self.doc, encounter, patient_id, patient, {patient_id, local_patient})
        stay.encounter_ids.add(encounter_id)
        values: dict[str, Any] = {"encounter_id": encounter_id, "patient_nbr": patient_id}
        missing: list[str] = []

        def put(column: str, value: Any, missing_value: Any) -> None:
            if value is None:
                values[column] = missing_value
                missing.append(column)
            else:
                values[column] = value

        admission_day = local_date(period.get("start"))
        fallback = self._history_demographics(patient_id, admitted) if patient is None else {}
        put(
            "race",
            patient_rules.race(patient) if patient else fallback.get("race"),
            MISSING_CATEGORY,
        )
        put(
            "gender",
            patient_rules.gender(patient) if patient else fallback.get("gender"),
            "Unknown/Invalid",
        )
        put(
            "age",
            patient_rules.age_band(patient, admission_day) if patient else None,
            MISSING_CATEGORY,
        )
        # An earlier stay mapped as history (with_history=False) needs only what
        # history_features reads (length of stay, prior-year visits): its clinical
        # columns are left at their missing values instead of scanning the document
        # once per earlier stay (a record with 100 earlier stays stays linear).
        clinical = with_history
        labs = stay.labs() if clinical else LabSummary()
        put("weight", labs.weight_band(), MISSING_CATEGORY)
        put("admission_type_id", enc_rules.admission_type(encounter), ADMISSION_TYPE_MISSING)
        put(
            "discharge_disposition_id",
            enc_rules.discharge_disposition(encounter),
            DISCHARGE_MISSING,
        )
        put("admission_source_id", enc_rules.admission_source(encounter), ADMISSION_SOURCE_MISSING)
        put("time_in_hospital", enc_rules.length_of_stay(encounter), 1)
        put(
            "payer_code",
            coverage_rules.payer_for(
                self.doc.of_type("Coverage"), stay.is_patient_ref, admission_day
            ),
            MISSING_CATEGORY,
        )
        put("medical_specialty", enc_rules.specialty(encounter), MISSING_CATEGORY)
        values["num_lab_procedures"] = labs.lab_count
        values["num_procedures"] = stay.procedure_count() if clinical else 0
        if clinical:
            self._diagnoses(stay, put, values)
        else:
            values["number_diagnoses"] = 0
            for column in ("diag_1", "diag_2", "diag_3"):
                put(column, None, MISSING_CATEGORY)
        put("max_glu_serum", labs.glucose_band(), MISSING_LAB)
        put("A1Cresult", labs.hba1c_band(), MISSING_LAB)
        if clinical:
            self._medications(stay, values)
        else:
            values.update(dict.fromkeys(MEDICATION_COLUMNS, MEDICATION_NOT_GIVEN))
            values.update(change="No", diabetesMed="No", num_medications=0)
        self._utilisation(encounter_id, patient_id, admitted, visits, put)
        if with_history and admitted is not None:
            known, prior = self._prior_stays(encounter, patient_id, encounter_id, admitted, visits)
            # calendar days, like the dataset's length of stay (a return the next day is 1)
            days = (admitted.date() - prior[-1].admitted_at.date()).days if prior else None
            values.update(history_features([stay.record for stay in prior], days))
            if not known:
                missing.append("prior_encounters")
        else:
            values.update(history_features([]))
            missing.append("prior_encounters")
        record = FeatureRecord(**values)
        return MappedEncounter(
            encounter_id=encounter_id,
            patient_id=patient_id,
            ward=stay.ward(),
            input_key=self._input_key(encounter, encounter_id, stay),
            admitted_at=admitted,
            discharged_at=discharged,
            record=record,
            missing=tuple(missing),
            visits=tuple(visits),
            resource_id=_resource_id(encounter, self.doc),
            full_url=self.doc.full_url(encounter),
        )

    def _prior_stays(
        self,
        encounter: Resource,
        patient_id: str,
        encounter_id: str,
        admitted: datetime,
        visits: list[VisitSummary],
    ) -> tuple[bool, list[PriorStay]]:
        """(whether any history source exists, earlier index stays oldest first).

        Two sources, combined by encounter id (the document's own version wins): the
        store's remembered stays, and the earlier finished inpatient stays the document
        itself carries ($everything, bulk exports), mapped by the same rules as the
        index stay. Never this encounter itself (a resent document whose admission time
        was corrected later must not become its own previous stay).
        """
        stored = self.history.prior_index_records(patient_id, admitted) if self.history else []
        own = self._document_stays(encounter, patient_id, admitted, visits)
        stays = combine_stays(stored, own, self.unidentified)
        stays.pop(encounter_id, None)
        return self.history is not None or bool(stays), sorted(stays.values(), key=admission_order)

    def _document_stays(
        self, index: Resource, patient_id: str, admitted: datetime, visits: list[VisitSummary]
    ) -> list[PriorStay]:
        """The patient's earlier finished inpatient stays in this document, mapped
        without history of their own (history_features ignores it). A stay that cannot
        be mapped (impossible dates, ...) is left out, not a reason to refuse the
        document: only the index stay is held to that."""
        earlier = []
        for encounter in self.encounters:
            if encounter is index or not enc_rules.is_index(encounter):
                continue
            found = self.patient_of.get(id(encounter))
            start = parse_datetime((encounter.get("period") or {}).get("start"))
            if found is None or found[0] != patient_id or start is None or start >= admitted:
                continue
            earlier.append((start, encounter))
        earlier.sort(key=lambda pair: pair[0])
        out = []
        for start, encounter in earlier[-MAX_DOCUMENT_PRIOR_STAYS:]:
            try:
                mapped = self._map(encounter, visits, with_history=False)
            except FhirMappingError:
                continue
            out.append(PriorStay(start, mapped.record))
        return out

    def _history_demographics(self, patient_id: str, admitted: datetime | None) -> dict[str, str]:
        """Race and gender from the patient's latest earlier record, when the Patient is
        not in the document (age is not taken: the band may have moved since)."""
        if self.history is None or admitted is None:
            return {}
        prior = self.history.prior_index_records(patient_id, admitted)
        if not prior:
            return {}
        last = prior[-1].record
        out = {}
        if last.race != MISSING_CATEGORY:
            out["race"] = last.race
        if last.gender != "Unknown/Invalid":
            out["gender"] = last.gender
        return out

    def _diagnoses(self, stay: _Stay, put: Callable[..., None], values: dict[str, Any]) -> None:
        codes = stay.diagnosis_codes()
        values["number_diagnoses"] = len(codes)
        for k, column in enumerate(("diag_1", "diag_2", "diag_3")):
            put(column, codes[k] if k < len(codes) else None, MISSING_CATEGORY)

    def _medications(self, stay: _Stay, values: dict[str, Any]) -> None:
        summary = stay.medications()
        directions, switched = summary.columns()
        for column in MEDICATION_COLUMNS:
            values[column] = directions.get(column, MEDICATION_NOT_GIVEN)
        changed = switched or any(d in ("Up", "Down") for d in directions.values())
        values["change"] = "Ch" if changed else "No"
        values["diabetesMed"] = "Yes" if directions else "No"
        values["num_medications"] = len(summary.distinct)

    def _utilisation(
        self,
        encounter_id: str,
        patient_id: str,
        admitted: datetime | None,
        visits: list[VisitSummary],
        put: Callable[..., None],
    ) -> None:
        columns = ("number_outpatient", "number_emergency", "number_inpatient")
        if admitted is None:
            for column in columns:
                put(column, None, 0)
            return
        stored = self.history.prior_visits(patient_id) if self.history is not None else []
        own = [v for v in visits if v.patient_id == patient_id]
        counts = [0, 0, 0]
        since = admitted - PRIOR_WINDOW
        for visit in combine_visits(stored, own, self.unidentified):
            start = visit.start if visit.start.tzinfo else visit.start.replace(tzinfo=UTC)
            if visit.encounter_id == encounter_id or not since <= start < admitted:
                continue
            code = visit.class_code
            if code in OUTPATIENT:
                counts[0] += 1
            elif code in EMERGENCY:
                counts[1] += 1
            elif code in INPATIENT:
                counts[2] += 1
        for column, count in zip(columns, counts, strict=True):
            put(column, count, 0)

    def _input_key(self, encounter: Resource, encounter_id: str, stay: _Stay) -> str:
        meta = encounter.get("meta") or {}
        if meta.get("versionId"):
            return f"{encounter_id}/_history/{meta['versionId']}"
        if meta.get("lastUpdated"):
            return f"{encounter_id}@{meta['lastUpdated']}"
        fed = [encounter, stay.patient, *stay.used]
        digest = hashlib.sha256(
            orjson.dumps([r for r in fed if r is not None], option=orjson.OPT_SORT_KEYS)
        ).hexdigest()
        return f"{encounter_id}#sha256:{digest}"


def _problem_list_last(condition: Resource) -> bool:
    """Sort key: the stay's encounter diagnoses before problem-list or uncategorised
    Conditions linked to it (a chronic prediabetes entry is not the principal diagnosis
    of a stay coded for diabetes); document order otherwise (the sort is stable)."""
    return ENCOUNTER_DIAGNOSIS not in cond_rules.categories(condition)


class _DiagnosisList:
    """Diagnoses in order, each Condition and each known ICD-9-CM code once."""

    def __init__(self) -> None:
        self._entries: list[tuple[str | None, bool]] = []  # (code, is prediabetes)
        self._codes: set[str] = set()
        self._conditions: set[int] = set()

    def add(self, code: str | None, condition: Resource | None = None) -> None:
        if condition is not None:
            if id(condition) in self._conditions:
                return
            self._conditions.add(id(condition))
        if code is not None:
            if code in self._codes:
                return
            self._codes.add(code)
        prediabetes = condition is not None and cond_rules.is_prediabetes(condition)
        self._entries.append((code, prediabetes))

    @property
    def codes(self) -> list[str | None]:
        """The list; prediabetes Conditions dropped when a diabetes code (250.xx) is on
        it (ICD-10-CM R73 Excludes1 E08-E13: a problem list still carrying the old
        prediabetes entry of a diabetic)."""
        diabetic = any(code is not None and code.startswith("250") for code in self._codes)
        return [code for code, pre in self._entries if not (diabetic and pre)]


class _Stay:
    """The resources of the document that belong to one index stay."""

    def __init__(
        self,
        doc: Document,
        encounter: Resource,
        patient_id: str,
        patient: Resource | None,
        patient_ids: set[str | None] | None = None,
    ) -> None:
        self.doc = doc
        self.encounter = encounter
        self.encounter_id = _resource_id(encounter, doc)
        # this document's id and the visit's canonical one: a resource arriving later
        # names the stay by the id it was first sent under
        self.encounter_ids = {self.encounter_id}
        self.patient_id = patient_id
        self.patient = patient
        # the canonical id and the one this document uses (they differ for a patient
        # first sent under another id)
        self.patient_ids = patient_ids or {patient_id}
        period = encounter.get("period") or {}
        self.start = local_date(period.get("start"))
        self.end = local_date(period.get("end")) or self.start
        self.used: list[Resource] = []

    def is_patient_ref(self, holder: Resource, key: str = "beneficiary") -> bool:
        ref = holder.get(key)
        if not ref:
            return False
        target = self.doc.resolve(ref, holder)
        if target is not None:
            return target is self.patient
        return self.doc.external_id(ref) in self.patient_ids

    def _belongs(self, resource: Resource, link: str) -> bool:
        ref = resource.get(link)
        if ref:
            target = self.doc.resolve(ref, resource)
            if target is not None:
                return target is self.encounter
            return self.doc.external_id(ref) in self.encounter_ids
        if not self.is_patient_ref(resource, "subject") or self.start is None:
            return False
        when = local_date(effective_time(resource))
        return when is not None and self.start <= when <= (self.end or self.start)

    def _of(self, resource_type: str, link: str = "encounter") -> list[Resource]:
        found = [r for r in self.doc.of_type(resource_type) if self._belongs(r, link)]
        self.used.extend(found)
        return found

    def labs(self) -> LabSummary:
        summary = LabSummary()
        for observation in self._of("Observation"):
            summary.add(observation)
        return summary

    def procedure_count(self) -> int:
        return sum(1 for p in self._of("Procedure") if procedure_counts(p))

    def diagnosis_codes(self) -> list[str | None]:
        """The stay's diagnoses, most important first (rules: CONTRACT.md, Diagnoses).

        ``Encounter.diagnosis`` is the coded list of the stay and, when present, comes
        first; an encounter-diagnosis Condition of the stay it does not list (coded after
        the Encounter was sent: a late diagnosis) follows it. Without it: the reasons for
        the stay (``reasonCode``, then ``reasonReference`` Conditions), then the
        Conditions of the stay (encounter-diagnosis, problem-list-item or uncategorised),
        then the patient's problem list active during the stay; the same ICD-9-CM code is
        listed once.
        """
        ranked = enc_rules.ranked_diagnoses(self.encounter)
        if ranked:
            out = []
            listed: set[int] = set()  # a Condition under two roles (AD and DD) is one
            for entry in ranked:
                condition = self.doc.resolve(entry.get("condition"), self.encounter)
                if condition is not None:
                    if not cond_rules.is_true(condition) or id(condition) in listed:
                        continue
                    listed.add(id(condition))
                    self.used.append(condition)
                out.append(diagnosis_code(condition))
            for condition in self._of("Condition"):
                code = diagnosis_code(condition)
                if (
                    id(condition) not in listed
                    and ENCOUNTER_DIAGNOSIS in cond_rules.categories(condition)
                    and cond_rules.is_true(condition)
                    and (code is None or code not in out)
                ):
                    listed.add(id(condition))
                    out.append(code)
            return out[:MAX_DIAGNOSES]
        found = _DiagnosisList()
        for concept in self.encounter.get("reasonCode") or ():
            found.add(concept_code(concept)[0])
        for ref in self.encounter.get("reasonReference") or ():
            target = self.doc.resolve(ref, self.encounter)
            if (
                target is not None
                and target.get("resourceType") == "Condition"
                and cond_rules.is_true(target)
            ):
                self.used.append(target)
                found.add(diagnosis_code(target), target)
        linked = self._of("Condition")
        for condition in sorted(linked, key=_problem_list_last):
            kinds = cond_rules.categories(condition)
            if cond_rules.is_true(condition) and (
                not kinds or kinds & {ENCOUNTER_DIAGNOSIS, PROBLEM_LIST}
            ):
                found.add(diagnosis_code(condition), condition)
        if self.start is not None and self.end is not None:
            for condition in self.problem_list(linked, self.start, self.end):
                found.add(diagnosis_code(condition), condition)
        return found.codes[:MAX_DIAGNOSES]

    def problem_list(self, linked: list[Resource], start: date, end: date) -> list[Resource]:
        """The patient's problem-list Conditions (category problem-list-item, or none:
        feeds such as Synthea omit it) active on a day of the stay, not linked to it."""
        skip = {id(c) for c in linked}
        out = []
        for condition in self.doc.of_type("Condition"):
            if id(condition) in skip or not self.is_patient_ref(condition, "subject"):
                continue
            kinds = cond_rules.categories(condition)
            if kinds and PROBLEM_LIST not in kinds:
                continue
            if cond_rules.is_true(condition) and cond_rules.active_during(condition, start, end):
                out.append(condition)
        self.used.extend(out)
        return out

    def medications(self) -> MedicationSummary:
        summary = MedicationSummary(self.doc.resolve)
        for request in self._of("MedicationRequest"):
            summary.add(request)
            prior = self.doc.resolve(request.get("priorPrescription"), request)
            if prior is not None:
                self.used.append(prior)
        for administration in self._of("MedicationAdministration", "context"):
            summary.add(administration)
        for statement in self._of("MedicationStatement", "context"):
            summary.add(statement)
        if self.start is not None and self.end is not None:
            for resource in self._chronic(self.start, self.end):
                summary.add(resource, steady=True)
        return summary

    def _chronic(self, start: date, end: date) -> list[Resource]:
        """Orders and statements of the patient outside the stay that were running
        during it (an insulin order written at last year's visit and never stopped)."""
        inside = {id(r) for r in self.used}
        replaced = {
            id(prior)
            for request in self.doc.of_type("MedicationRequest")
            if (prior := self.doc.resolve(request.get("priorPrescription"), request))
        }
        out = [
            r
            for kind in ("MedicationRequest", "MedicationStatement")
            for r in self.doc.of_type(kind)
            if id(r) not in inside
            and id(r) not in replaced
            and self.is_patient_ref(r, "subject")
            and med_rules.running_during(r, start, end)
        ]
        self.used.extend(out)
        return out

    def ward(self) -> str:
        """Location of the stay: a ward-type location first, else the last one listed."""
        entries = list(self.encounter.get("location") or ())
        if not entries:
            return UNASSIGNED
        best = entries[-1]
        for entry in entries:
            location = self.doc.resolve(entry.get("location"), self.encounter)
            kinds = [entry.get("physicalType"), (location or {}).get("physicalType")]
            if any(c.get("code") == "wa" for k in kinds if k for c in k.get("coding") or ()):
                best = entry
                break
        ref = best.get("location") or {}
        location = self.doc.resolve(ref, self.encounter)
        if location is not None:
            self.used.append(location)
            return _resource_id(location, self.doc)
        return self.doc.external_id(ref) or ref.get("display") or UNASSIGNED


__all__ = ["MappedEncounter", "map_document"]
