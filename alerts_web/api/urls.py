from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from alerts_web.api import views
from alerts_web.api.schema import SwaggerView

app_name = "api"

urlpatterns = [
    path(
        "v1/encounters/<str:encounter_id>/score",
        views.EncounterScoreView.as_view(),
        name="encounter-score",
    ),
    path(
        "v1/patients/<str:patient_id>/scores",
        views.PatientScoresView.as_view(),
        name="patient-scores",
    ),
    path("v1/wards/<str:ward>/alerts", views.WardAlertsView.as_view(), name="ward-alerts"),
    path("v1/predict", views.PredictView.as_view(), name="predict"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SwaggerView.as_view(url_name="api:schema"), name="docs"),
]
