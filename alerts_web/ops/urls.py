from django.urls import path

from alerts_web.ops import views

app_name = "ops"

urlpatterns = [
    path("", views.ops_page, name="page"),
    path("status.json", views.ops_json, name="status"),
]
