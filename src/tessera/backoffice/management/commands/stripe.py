from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tessera.backoffice.stripe_testing import DEFAULT_TEST_CARD, CardNotMade, make_test_card


class Command(BaseCommand):
    help = "Stripe in test mode: `test-card` prints a new PaymentMethod id for a test card."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        card = sub.add_parser(
            "test-card",
            help="print a new PaymentMethod id (pm_…) for a test card, on the Stripe emulator",
        )
        card.add_argument(
            "--number",
            default=DEFAULT_TEST_CARD,
            help="a Stripe test card number: 4242424242424242 (default) is paid, "
            "4000002500003155 asks for 3-D Secure, 4000000000000002 is declined",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            card = make_test_card(
                options["number"].replace(" ", ""),
                secret_key=settings.STRIPE_SECRET_KEY,
                api_base=settings.STRIPE_API_BASE,
            )
        except CardNotMade as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(
            f"Test card {card.brand} …{card.last4} on the emulator at {settings.STRIPE_API_BASE}:"
        )
        # Alone on stdout, so a script can take it: PM=$(tessera stripe test-card)
        self.stdout.write(card.payment_method_id)
