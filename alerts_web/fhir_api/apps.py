from django.apps import AppConfig


class FhirApiConfig(AppConfig):
    name = "alerts_web.fhir_api"
    label = "fhir_api"
    verbose_name = "FHIR RiskAssessment"
