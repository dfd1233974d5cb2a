from __future__ import annotations

from collections.abc import Callable

import pytest

from tessera.core.apikeys import create_api_key
from tessera.core.models import SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE
from tessera.crm.matching import rules
from tests.support.api import Api

# Fixtures defined next to the helpers they belong with (localstripe_url, stripe_env, ...).
pytest_plugins = ["tests.support.stripe"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" in engine:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL row locks; runs in the PostgreSQL pass")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def make_api(db: None) -> Callable[..., Api]:
    def make(*scopes: str) -> Api:
        _, raw = create_api_key("test", scopes or (SCOPE_READ, SCOPE_WRITE))
        return Api(raw)

    return make


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api(SCOPE_READ, SCOPE_WRITE)


@pytest.fixture
def admin_api(make_api: Callable[..., Api]) -> Api:
    return make_api(SCOPE_ADMIN)


@pytest.fixture
def fresh_rules() -> None:
    """Matching rules are cached in the process: the test reads them from its own database."""
    rules.invalidate()


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Rate-limit counters live in the process's cache: each test starts from none."""
    from django.core.cache import cache

    cache.clear()
