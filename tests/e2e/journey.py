"""A member's or staff member's browser session: pages, screenshots at desktop and phone
width, and every Content-Security-Policy violation the browser reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.portal_stack import Stack, clear_output
from tests.support.portal import SIGNIN_LINK

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 780}


@dataclass
class Journey:
    stack: Stack
    page: Any
    folder: Path
    violations: list[str] = field(default_factory=list)
    shots: int = 0

    @classmethod
    def start(cls, chromium: Any, stack: Stack, name: str) -> Journey:
        context = chromium.new_context(viewport=DESKTOP, base_url=stack.base)
        page = context.new_page()
        page.set_default_timeout(15_000)
        journey = cls(stack, page, clear_output(name))
        page.on("console", journey._console)
        return journey

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.violations.append(message.text)

    def go(self, path: str) -> Any:
        return self.page.goto(path)

    def shot(self, step: str) -> None:
        """The page as it is now, at desktop width and at 360 px."""
        self.shots += 1
        stem = f"{self.shots:02d}-{step}"
        self.page.screenshot(path=str(self.folder / f"{stem}-desktop.png"), full_page=True)
        self.page.set_viewport_size(PHONE)
        self.page.screenshot(path=str(self.folder / f"{stem}-360px.png"), full_page=True)
        self.page.set_viewport_size(DESKTOP)

    def sign_in(self, email: str, next_path: str = "/") -> None:
        """Through the link in the email the worker sent, as a member would."""
        before = len(self.stack.emails_to(email, timeout=0))
        self.go(next_path)
        self.page.get_by_role("textbox", name="Email", exact=True).fill(email)
        self.page.get_by_role("button", name="Send me a link").click()
        self.page.get_by_text("Check your email").wait_for()
        link = self.signin_link(email, before)
        self.go(link)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state()

    def signin_link(self, email: str, already: int) -> str:
        import time

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            messages = self.stack.emails_to(email, timeout=0)
            if len(messages) > already:
                body = _text_of(messages[-1])
                found = SIGNIN_LINK.search(body)
                assert found is not None, body
                return found.group(0)
            time.sleep(0.2)
        raise AssertionError(f"no sign-in email reached {email}")

    def close(self) -> None:
        self.page.context.close()


def _text_of(message: Any) -> str:
    if message.is_multipart():
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                return str(part.get_payload(decode=True).decode())
    return str(message.get_payload(decode=True).decode())
