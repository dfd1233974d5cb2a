from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "tessera.loyalty"
    label = "loyalty"
    verbose_name = "Loyalty"

    def ready(self) -> None:
        # An explicit registry, not signals: billing settles top-ups through this function.
        from tessera.billing.settlement import register_settler
        from tessera.loyalty.credit import PURPOSE, refund_topup, settle_topup

        register_settler(PURPOSE, settle_topup, on_refund=refund_topup)
