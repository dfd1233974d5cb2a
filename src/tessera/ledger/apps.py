from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "tessera.ledger"
    label = "ledger"
    verbose_name = "Ledger"
