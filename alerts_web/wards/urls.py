from django.urls import path

from alerts_web.wards import views

app_name = "wards"

urlpatterns = [
    path("", views.index, name="index"),
    path("wards/<str:code>/", views.dashboard, name="dashboard"),
]
