from django.apps import AppConfig


class WardsConfig(AppConfig):
    name = "alerts_web.wards"
    label = "wards"
    verbose_name = "Wards and nurse assignment"
