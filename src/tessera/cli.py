"""The ``tessera`` command: Django's management commands with Tessera's settings.

Before settings load it settles what the command runs against, so that a missing piece of
configuration is a sentence, not a traceback or a new empty database:

- ``tessera demo`` switches on demo mode (SQLite, console email, a local secret key).
- Beside the demo's database (no DATABASE_URL and the demo's ``tessera.sqlite3`` in the
  working directory) every command uses the demo's database and settings, including its
  Stripe emulator.
- Only ``migrate``, ``demo`` and ``restore`` (which fills a new file from a backup) create
  a SQLite file. Any other command pointed at one that does not exist (or was never
  migrated) says which file and what to set, and exits 2.
  Commands that read no data (help, ``makemigrations``, ``check``, ``stripe``) run anyway,
  on an in-memory database when there is no file.
- Help (``tessera``, ``tessera help``, ``--help``) needs no configuration at all.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

from tessera.backoffice.demo_state import (
    STATE_STRIPE_API_BASE,
    demo_environment,
    is_demo_database,
    read_state,
    state_file,
)
from tessera.core.dbfile import never_migrated, sqlite_file

EXIT_CONFIGURATION = 2
CREATES_DATABASE = frozenset({"migrate", "demo", "restore"})
# Django may still connect for these (makemigrations checks the migration history), which
# would create the file; without one they get an in-memory database instead.
READS_NO_DATA = frozenset(
    {"help", "version", "check", "makemigrations", "diffsettings", "findstatic", "stripe"}
)
HELP_ARGUMENTS = frozenset({"-h", "--help", "--version", "help", "version"})
# Printing help opens no database and signs nothing; settings only need some key to load.
HELP_ONLY_SECRET_KEY = "tessera-help-only-never-signs-anything"  # noqa: S105


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv if argv is None else argv)
    args[0] = "tessera"
    command = args[1] if len(args) > 1 else "help"
    problem = settle_environment(command, args[2:], os.environ)
    if problem is None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tessera.settings")
        problem = _load_settings()
    if problem is not None:
        print(problem, file=sys.stderr)
        raise SystemExit(EXIT_CONFIGURATION)
    from django.core.management import execute_from_command_line

    execute_from_command_line(args)


def settle_environment(
    command: str, options: list[str], env: MutableMapping[str, str]
) -> str | None:
    """Set demo mode and the database for ``command`` in ``env``; why it cannot run, or None."""
    if command == "demo":
        env["TESSERA_DEMO"] = "1"
    if _is_help(command, options):
        if not env.get("SECRET_KEY"):
            env["SECRET_KEY"] = HELP_ONLY_SECRET_KEY
        return None
    database = sqlite_file(env)
    if database is None:
        return None  # a database server: the settings and Django report what is missing
    if command != "demo" and is_demo_database(database):
        recorded = read_state(state_file(database)).get(STATE_STRIPE_API_BASE, "")
        env.update(demo_environment(recorded))
    if command in CREATES_DATABASE:
        return None
    if command in READS_NO_DATA:
        if not database.exists():
            env["DATABASE_URL"] = "sqlite://:memory:"
        return None
    if not database.exists():
        return _no_database(database, env)
    if never_migrated(database):
        return (
            f"tessera: {database} is an empty database (never migrated): run `tessera migrate` "
            "to set it up, or set DATABASE_URL to your database."
        )
    return None


def _is_help(command: str, options: list[str]) -> bool:
    if command in HELP_ARGUMENTS:
        return True
    before_positional_only = options[: options.index("--")] if "--" in options else options
    return any(option in ("-h", "--help") for option in before_positional_only)


def _no_database(database: Path, env: MutableMapping[str, str]) -> str:
    named_by = "named by DATABASE_URL" if env.get("DATABASE_URL") else "DATABASE_URL is not set"
    return (
        f"tessera: no database at {database} ({named_by}), and only `tessera migrate` "
        "(or `tessera restore`) creates one.\n"
        "Set DATABASE_URL (and SECRET_KEY) to use your database, or cd to the directory where "
        "`tessera demo` runs (or start `tessera demo` here)."
    )


def _load_settings() -> str | None:
    """Load the settings now: Django would otherwise hit a configuration error inside its
    command lookup and print it as a 40-line traceback."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.INSTALLED_APPS  # noqa: B018 - reading it loads the settings
    except ImproperlyConfigured as exc:
        return f"tessera: {exc}"
    return None


if __name__ == "__main__":
    main()
