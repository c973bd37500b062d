from django.apps import AppConfig


class WhatIfConfig(AppConfig):
    name = "alerts_web.whatif"
    label = "whatif"
    verbose_name = "What-if scoring form"
