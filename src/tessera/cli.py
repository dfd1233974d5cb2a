"""The ``tessera`` command: Django's management commands with Tessera's settings.

``tessera demo`` switches on demo mode (SQLite, console email, a local secret key) before
settings load; every other command reads its configuration from the environment.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv if argv is None else argv)
    args[0] = "tessera"
    if len(args) > 1 and args[1] == "demo":
        os.environ["TESSERA_DEMO"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tessera.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(args)


if __name__ == "__main__":
    main()
