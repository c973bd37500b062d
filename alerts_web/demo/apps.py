from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "alerts_web.demo"
    label = "demo"
    verbose_name = "Embedded demo seed data"
