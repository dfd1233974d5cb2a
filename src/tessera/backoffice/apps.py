from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    name = "tessera.backoffice"
    label = "backoffice"
    verbose_name = "Back office"
