from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts_web.alerts"
    label = "alerts"
    verbose_name = "High-risk discharge alerts"
