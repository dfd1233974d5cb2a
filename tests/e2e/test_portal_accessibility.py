"""Every member page through axe-core (vendored in tests/support/vendor): no serious or
critical WCAG 2.1 A/AA violation, at desktop width and at 360 px."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.journey import DESKTOP, PHONE, Journey
from tests.e2e.portal_stack import Stack

pytestmark = pytest.mark.slow

AXE = Path(__file__).resolve().parents[1] / "support" / "vendor" / "axe-core-4.10.3" / "axe.min.js"
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def _member_pages(seed: dict[str, Any]) -> list[str]:
    activities = seed["activities"]
    return [
        "/", "/wallet", "/earn", f"/earn/{activities['question']}", f"/earn/{activities['vote']}",
        f"/earn/{activities['video']}", "/shop", "/shop/cart", "/credit", "/events",
        f"/events/{seed['summit']}", f"/events/{seed['masterclass']}", "/tickets", "/profile",
    ]  # fmt: skip


def _serious(page: Any) -> list[str]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        "async (rules) => (await axe.run(document, {runOnly: {type: 'tag', values: rules}}))"
        ".violations.filter(v => ['serious', 'critical'].includes(v.impact))"
        ".map(v => v.id + ': ' + v.help + ' @ ' + v.nodes.map(n => n.target.join(' ')).join(', '))",
        RULES,
    )
    return list(found)


@pytest.fixture(scope="module")
def reader(chromium: Any, stack: Stack) -> Any:
    # axe is injected as a script: this context alone lifts the page's CSP to let it in.
    context = chromium.new_context(viewport=DESKTOP, base_url=stack.base, bypass_csp=True)
    journey = Journey(stack, context.new_page(), Path("/dev/null"))
    journey.page.set_default_timeout(15_000)
    journey.sign_in("ada@e2e.test")
    yield journey.page
    context.close()


def test_the_signin_page_has_no_serious_violation(chromium: Any, stack: Stack) -> None:
    context = chromium.new_context(viewport=DESKTOP, base_url=stack.base, bypass_csp=True)
    page = context.new_page()
    page.goto("/signin")
    assert _serious(page) == []
    context.close()


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_member_pages_have_no_serious_violation(reader: Any, stack: Stack, width: str) -> None:
    reader.set_viewport_size(DESKTOP if width == "desktop" else PHONE)
    problems = {}
    for path in _member_pages(stack.seed):
        reader.goto(path)
        found = _serious(reader)
        if found:
            problems[path] = found
    assert problems == {}
