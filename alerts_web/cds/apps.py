from django.apps import AppConfig


class CdsConfig(AppConfig):
    name = "alerts_web.cds"
    label = "cds"
    verbose_name = "CDS Hooks service"
