from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "alerts_web.api"
    label = "api"
    verbose_name = "Integrator API keys"

    def ready(self) -> None:
        from alerts_web.api import schema  # noqa: F401  (registers the auth scheme)
