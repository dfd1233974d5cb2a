from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "tessera.events"
    label = "events"
    verbose_name = "Events"

    def ready(self) -> None:
        # Explicit registries, not signals: billing settles checkout payments and refunds
        # through these, and the worker builds the confirmation's attachments here.
        from tessera.billing.settlement import register_settler
        from tessera.events.cancellation import refund_checkout_payment
        from tessera.events.checkout import CHECKOUT_PURPOSE
        from tessera.events.confirmation import ATTACHMENTS, build_attachments
        from tessera.events.outcome import settle_checkout
        from tessera.notifications.attachments import register_attachment_builder

        register_settler(CHECKOUT_PURPOSE, settle_checkout, on_refund=refund_checkout_payment)
        register_attachment_builder(ATTACHMENTS, build_attachments)
