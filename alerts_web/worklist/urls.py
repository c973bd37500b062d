from django.urls import path

from alerts_web.worklist import views

app_name = "wards"

urlpatterns = [
    path("", views.index, name="index"),
    path("worklist/", views.all_wards, name="worklist"),
    path("worklist/data", views.worklist_data, name="worklist-data"),
    path("wards/<str:code>/", views.dashboard, name="dashboard"),
]
