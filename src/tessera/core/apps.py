from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "tessera.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        import email_validator

        # RFC 2606 reserves .test for testing; integrators use it in their own test suites,
        # so accept it like any other address (it is never delivered anyway).
        email_validator.SPECIAL_USE_DOMAIN_NAMES = [
            d for d in email_validator.SPECIAL_USE_DOMAIN_NAMES if d != "test"
        ]
