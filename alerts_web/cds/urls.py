from django.urls import path

from alerts_web.cds import views

app_name = "cds"

urlpatterns = [
    path("cds-services", views.services, name="discovery"),
    path("cds-services/readmission-risk", views.readmission_risk, name="readmission-risk"),
    path("cds-services/<str:service_id>/feedback", views.feedback, name="feedback"),
]
