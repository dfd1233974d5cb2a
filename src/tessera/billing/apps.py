from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "tessera.billing"
    label = "billing"
    verbose_name = "Billing"
