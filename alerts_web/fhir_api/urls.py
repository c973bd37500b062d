from django.urls import path

from alerts_web.fhir_api import views

app_name = "fhir"

urlpatterns = [
    path("metadata", views.metadata, name="metadata"),
    path("RiskAssessment", views.search, name="riskassessment-search"),
    path("RiskAssessment/<str:resource_id>", views.read, name="riskassessment-read"),
]
