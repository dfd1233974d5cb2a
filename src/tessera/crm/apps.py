from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "tessera.crm"
    label = "crm"
    verbose_name = "CRM"
