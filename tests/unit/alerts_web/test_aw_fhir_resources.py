"""RiskAssessment output validated with the fhir.resources R4B models."""

from __future__ import annotations

from datetime import UTC, datetime

from aw_fakes import score_event
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.riskassessment import RiskAssessment

from alerts_web.fhir_api.resources import (
    operation_outcome,
    resource_id,
    risk_assessment,
    searchset,
)
from model_store.explain import PENDING_TEXT


def test_risk_assessment_is_valid_r4_with_required_content() -> None:
    event = score_event()
    resource = risk_assessment(event)
    parsed = RiskAssessment.model_validate(resource)
    assert parsed.id == "enc-1001"
    assert parsed.status == "final"
    assert parsed.subject.reference == "Patient/pat-77"
    assert parsed.encounter.reference == "Encounter/enc-1001"
    prediction = parsed.prediction[0]
    assert float(prediction.probabilityDecimal) == 0.62
    assert prediction.qualitativeRisk.coding[0].code == "high"
    assert parsed.method.coding[0].code == "lr-20261127-01"
    assert {b.reference for b in parsed.basis} == {"Encounter/enc-1001", "Patient/pat-77"}
    assert "Medication reconciliation" in parsed.mitigation
    assert "3 inpatient stays" in prediction.rationale


def test_medium_band_maps_to_moderate_and_no_interventions_omit_mitigation() -> None:
    resource = risk_assessment(score_event(band="medium", probability=0.2, interventions=()))
    parsed = RiskAssessment.model_validate(resource)
    assert parsed.prediction[0].qualitativeRisk.coding[0].code == "moderate"
    assert parsed.mitigation is None


def test_invalid_fhir_id_is_left_out_rather_than_emitted() -> None:
    assert resource_id("enc 1/2") is None
    resource = risk_assessment(score_event(encounter_id="enc 1/2"))
    assert "id" not in resource
    RiskAssessment.model_validate(resource)


def test_searchset_bundle_and_operation_outcome_are_valid() -> None:
    bundle = Bundle.model_validate(
        searchset([risk_assessment(score_event())], "http://testserver/fhir")
    )
    assert bundle.total == 1
    assert bundle.entry[0].fullUrl == "http://testserver/fhir/RiskAssessment/enc-1001"
    outcome = OperationOutcome.model_validate(
        operation_outcome("required", "Search by encounter.", expression="encounter")
    )
    assert outcome.issue[0].expression == ["encounter"]


def test_risk_assessment_says_not_applicable_after_death_or_hospice() -> None:
    resource = risk_assessment(score_event(non_readmittable=True))
    RiskAssessment.model_validate(resource)
    (prediction,) = resource["prediction"]
    assert "qualitativeRisk" not in prediction
    assert "probabilityDecimal" not in prediction
    assert "does not apply" in prediction["rationale"]
    assert "mitigation" not in resource
    assert "does not apply" in resource["note"][0]["text"]


def test_the_input_version_is_the_risk_assessments_version() -> None:
    assert "versionId" not in risk_assessment(score_event())["meta"]
    resource = risk_assessment(score_event(input_version=3))
    assert RiskAssessment.model_validate(resource).meta.versionId == "3"


def test_a_pending_score_is_preliminary_and_says_its_explanation_is_being_computed() -> None:
    pending = RiskAssessment.model_validate(
        risk_assessment(score_event(factors=(), interventions=(), factors_pending=True))
    )
    assert pending.status == "preliminary"
    assert pending.prediction[0].rationale == PENDING_TEXT
    unexplained = RiskAssessment.model_validate(risk_assessment(score_event(factors=())))
    assert unexplained.status == "final"
    assert unexplained.prediction[0].rationale == "No explanation available"


def test_last_updated_is_the_explanation_time_once_explained() -> None:
    explained_at = datetime(2026, 11, 27, 6, 0, 1, tzinfo=UTC)
    done = RiskAssessment.model_validate(risk_assessment(score_event(), explained_at))
    assert done.meta.lastUpdated == explained_at
    pending = score_event(factors=(), interventions=(), factors_pending=True)
    assert RiskAssessment.model_validate(risk_assessment(pending)).meta.lastUpdated == (
        pending.computed_at
    )
