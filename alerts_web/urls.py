from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("alerts_web.api.urls")),
    path("fhir/", include("alerts_web.fhir_api.urls")),
    path("", include("alerts_web.cds.urls")),
    path("what-if/", include("alerts_web.whatif.urls")),
    path("ops/", include("alerts_web.ops.urls")),
    path("", include("alerts_web.alerts.urls")),
    path("", include("alerts_web.worklist.urls")),
]
