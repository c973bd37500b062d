from django.apps import AppConfig


class AccessAuditConfig(AppConfig):
    name = "alerts_web.access_audit"
    label = "access_audit"
    verbose_name = "Patient data access audit"
