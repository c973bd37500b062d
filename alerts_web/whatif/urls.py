from django.urls import path

from alerts_web.whatif import views

app_name = "whatif"

urlpatterns = [path("", views.whatif, name="form")]
