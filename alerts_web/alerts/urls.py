from django.urls import path

from alerts_web.alerts import views

app_name = "alerts"

urlpatterns = [
    path("encounters/<str:encounter_id>/", views.encounter, name="encounter"),
    path("encounters/<str:encounter_id>/report.pdf", views.encounter_pdf, name="encounter-pdf"),
    path("encounters/<str:encounter_id>/report.csv", views.encounter_csv, name="encounter-csv"),
    path("alerts/<int:pk>/<str:kind>", views.alert_action, name="action"),
]
