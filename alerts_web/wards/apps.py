from django.apps import AppConfig


class WardsConfig(AppConfig):
    name = "alerts_web.wards"
    label = "wards"
    verbose_name = "Wards and nurse assignment"

    def ready(self) -> None:
        from alerts_web.wards import revocation  # noqa: F401  (connects the signal handlers)
