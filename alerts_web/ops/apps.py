from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "alerts_web.ops"
    label = "ops"
    verbose_name = "Operations"
