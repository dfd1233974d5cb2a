from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tessera.core.apikeys import create_api_key, revoke_api_key
from tessera.core.models import ALL_SCOPES, SCOPE_READ, SCOPE_WRITE, ApiKey


class Command(BaseCommand):
    help = "Create, list or revoke API keys. A new key is printed once and stored hashed."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a key and print it once")
        create.add_argument("--name", required=True)
        create.add_argument(
            "--scope",
            action="append",
            choices=ALL_SCOPES,
            help="grant a scope (repeatable); default: read and write. admin implies all.",
        )
        sub.add_parser("list", help="list keys (never their secrets)")
        revoke = sub.add_parser("revoke", help="revoke a key by id")
        revoke.add_argument("key_id")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            scopes = options["scope"] or [SCOPE_READ, SCOPE_WRITE]
            try:
                key, raw = create_api_key(options["name"], scopes)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            self.stderr.write(f"Created {key.id} '{key.name}' with scopes {', '.join(key.scopes)}.")
            self.stderr.write("Copy the key now: it is stored hashed and cannot be shown again.")
            self.stdout.write(raw)
        elif action == "list":
            for key in ApiKey.objects.order_by("created_at"):
                state = "revoked" if key.revoked_at else "active"
                used = key.last_used_at.isoformat() if key.last_used_at else "never"
                scopes = ",".join(key.scopes)
                self.stdout.write(
                    f"{key.id}  {key.prefix}…  {key.name}  [{scopes}]  {state}  last used {used}"
                )
        elif action == "revoke":
            found = ApiKey.objects.filter(pk=options["key_id"]).first()
            if found is None:
                raise CommandError(f"no API key {options['key_id']}")
            revoke_api_key(found)
            self.stdout.write(f"Revoked {found.id}.")
