from django.apps import AppConfig


class ParcConfig(AppConfig):
    name = "parc"
