"""The real `tessera` command, in a clean environment: in the demo's directory it uses the
demo; elsewhere, without configuration, it says what to set instead of failing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import stripe

from tessera.backoffice.demo_state import STATE_STRIPE_API_BASE, state_file, update_state
from tests.support.cli import clean_env, tessera

pytestmark = pytest.mark.slow  # each test runs the command in a new process


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A directory after a demo start (what `tessera demo` does before it serves), and the
    API key it printed."""
    directory = tmp_path_factory.mktemp("demo")
    code = (
        "import django; django.setup();"
        "from tessera.backoffice.demo import demo_api_key, demo_state_file, prepare_demo_database;"
        "prepare_demo_database(); print(demo_api_key(demo_state_file())[0])"
    )
    env = clean_env(TESSERA_DEMO="1", DJANGO_SETTINGS_MODULE="tessera.settings")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=directory, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return directory, done.stdout.strip()


def test_in_the_demo_directory_commands_need_no_secret_key(demo_dir: tuple[Path, str]) -> None:
    directory, api_key = demo_dir
    listed = tessera(directory, "apikey", "list")
    assert listed.returncode == 0, listed.stderr
    assert api_key[:12] in listed.stdout


def test_in_the_demo_directory_test_cards_go_to_the_demo_emulator(
    demo_dir: tuple[Path, str], localstripe_url: str
) -> None:
    directory, _ = demo_dir
    update_state(
        state_file(directory / "tessera.sqlite3"), **{STATE_STRIPE_API_BASE: localstripe_url}
    )
    made = tessera(directory, "stripe", "test-card")
    assert made.returncode == 0, made.stderr
    client = stripe.StripeClient("sk_test_x", base_addresses={"api": localstripe_url})
    assert client.v1.payment_methods.retrieve(made.stdout.strip()).id.startswith("pm_")


def test_elsewhere_a_command_names_the_database_and_what_to_set(tmp_path: Path) -> None:
    refused = tessera(tmp_path, "apikey", "list")
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
    assert str(tmp_path / "tessera.sqlite3") in refused.stderr
    assert "DATABASE_URL" in refused.stderr


def test_elsewhere_a_refused_command_creates_no_database(tmp_path: Path) -> None:
    tessera(tmp_path, "apikey", "list", SECRET_KEY="x")
    assert not (tmp_path / "tessera.sqlite3").exists()


def test_an_empty_database_file_asks_for_migrate(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "tessera.sqlite3").close()  # what older versions left behind
    refused = tessera(tmp_path, "apikey", "list", SECRET_KEY="x")
    assert refused.returncode != 0
    assert "tessera migrate" in refused.stderr


def test_migrate_creates_the_database_deliberately(tmp_path: Path) -> None:
    migrated = tessera(tmp_path, "migrate", "--verbosity", "0", SECRET_KEY="x")
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "tessera.sqlite3").exists()


def test_a_missing_secret_key_is_one_line(tmp_path: Path) -> None:
    refused = tessera(tmp_path, "apikey", "list", DATABASE_URL="postgres://nobody@127.0.0.1:9/x")
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines() == [refused.stderr.strip()]
    assert "SECRET_KEY must be set" in refused.stderr


@pytest.mark.parametrize("args", [(), ("--help",), ("apikey", "--help")])
def test_help_needs_no_configuration(tmp_path: Path, args: tuple[str, ...]) -> None:
    shown = tessera(tmp_path, *args)
    assert shown.returncode == 0, shown.stderr
    assert "apikey" in shown.stdout


def test_help_creates_no_database(tmp_path: Path) -> None:
    tessera(tmp_path, "--help")
    assert list(tmp_path.iterdir()) == []


def test_makemigrations_check_creates_no_database(tmp_path: Path) -> None:
    checked = tessera(tmp_path, "makemigrations", "--check", "--dry-run", TESSERA_TESTING="1")
    assert checked.returncode == 0, checked.stderr
    assert list(tmp_path.iterdir()) == []
