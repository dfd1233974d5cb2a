"""Attachments are built by the worker from a registered builder, just before sending."""

from __future__ import annotations

import email
from collections.abc import Callable
from email.message import EmailMessage, Message
from email.policy import default as default_policy
from io import StringIO
from typing import Any, cast

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tessera.notifications import attachments
from tessera.notifications.attachments import (
    Attachment,
    build_attachments,
    register_attachment_builder,
)
from tessera.notifications.models import OutboundEmail
from tessera.notifications.services import queue_email

pytestmark = pytest.mark.django_db(transaction=True)

PDF = b"%PDF-1.7\n% an invoice\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
ICS = "BEGIN:VCALENDAR\r\nSUMMARY:Café\r\nEND:VCALENDAR\r\n".encode()
INVOICE = Attachment("invoice-INV-7.pdf", PDF, "application/pdf")
QR = Attachment("ticket.png", PNG, "image/png", content_id="qr-att_01@tessera")
CALENDAR = Attachment("event.ics", ICS, "text/calendar")


@pytest.fixture(autouse=True)
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each test registers its own builders and sees no one else's.
    monkeypatch.setattr(attachments, "_builders", {})


def run_worker() -> None:
    call_command("worker", batch=True, interval=0.0, verbosity=0, stdout=StringIO())


def welcome(**kw: Any) -> OutboundEmail:
    with transaction.atomic():
        return queue_email(
            "welcome", to="ada@example.com", context={"first_name": "Ada", "message": "Hi."}, **kw
        )


def confirmation(*items: Attachment) -> Callable[[str], list[Attachment]]:
    def build(argument: str) -> list[Attachment]:
        return list(items)

    return build


def sent_message() -> EmailMessage:
    (sent,) = mail.outbox
    parsed = email.message_from_bytes(sent.message().as_bytes(), policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    return parsed


def part_named(message: Message, filename: str) -> Message:
    (part,) = [p for p in message.walk() if p.get_filename() == filename]
    return part


def parent_of(message: Message, child: Message) -> Message:
    (parent,) = [p for p in message.walk() if p.is_multipart() and child in p.get_payload()]
    return parent


def test_queue_email_stores_the_attachment_spec() -> None:
    register_attachment_builder("checkout", confirmation(INVOICE))
    queued = welcome(attachments_from="checkout:chk_01")
    queued.refresh_from_db()
    assert queued.attachments_from == "checkout:chk_01"


def test_queue_email_refuses_an_unregistered_builder() -> None:
    with pytest.raises(LookupError):
        welcome(attachments_from="checkout:chk_01")


def test_build_attachments_refuses_an_unknown_name() -> None:
    with pytest.raises(LookupError):
        build_attachments("nothing:1")


def test_a_name_cannot_be_taken_by_a_second_builder() -> None:
    register_attachment_builder("checkout", confirmation(INVOICE))
    with pytest.raises(ValueError, match="already registered"):
        register_attachment_builder("checkout", confirmation(QR))


def test_the_builder_receives_the_argument_after_the_name() -> None:
    seen: list[str] = []

    def build(argument: str) -> list[Attachment]:
        seen.append(argument)
        return []

    register_attachment_builder("checkout", build)
    welcome(attachments_from="checkout:chk_01:extra")
    run_worker()
    assert seen == ["chk_01:extra"]


def test_the_builder_runs_in_the_worker_outside_any_transaction() -> None:
    in_transaction: list[bool] = []

    def build(argument: str) -> list[Attachment]:
        in_transaction.append(connection.in_atomic_block)
        return []

    register_attachment_builder("checkout", build)
    welcome(attachments_from="checkout:chk_01")
    assert in_transaction == []  # not built when queued
    run_worker()
    assert in_transaction == [False]


def test_a_pdf_reaches_the_sent_message_as_an_attachment_named_by_its_filename() -> None:
    register_attachment_builder("checkout", confirmation(INVOICE, QR))
    welcome(attachments_from="checkout:chk_01")
    run_worker()
    pdf = part_named(sent_message(), "invoice-INV-7.pdf")
    assert pdf.get_content_disposition() == "attachment"
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_payload(decode=True) == PDF


def test_a_text_attachment_keeps_its_content_and_type() -> None:
    register_attachment_builder("checkout", confirmation(CALENDAR))
    welcome(attachments_from="checkout:chk_01")
    run_worker()
    ics = part_named(sent_message(), "event.ics")
    assert ics.get_content_type() == "text/calendar"
    # MIME text's line breaks are CRLF by definition, however a parser hands them back.
    assert ics.get_content().splitlines() == ICS.decode().splitlines()  # type: ignore[attr-defined]


def test_an_inline_image_is_sent_inline_with_its_content_id() -> None:
    register_attachment_builder("checkout", confirmation(INVOICE, QR))
    welcome(attachments_from="checkout:chk_01")
    run_worker()
    image = part_named(sent_message(), "ticket.png")
    assert image["Content-ID"] == "<qr-att_01@tessera>"
    assert image.get_content_disposition() == "inline"
    assert image.get_payload(decode=True) == PNG


def test_an_inline_image_is_related_to_the_html_body() -> None:
    register_attachment_builder("checkout", confirmation(INVOICE, QR))
    welcome(attachments_from="checkout:chk_01")
    run_worker()
    message = sent_message()
    related = parent_of(message, part_named(message, "ticket.png"))
    assert related.get_content_type() == "multipart/related"
    body = cast(list[Message], related.get_payload())[0]
    assert body.get_content_type() == "multipart/alternative"
    parts = cast(list[Message], body.get_payload())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]


def test_files_and_the_related_body_are_parts_of_a_mixed_message() -> None:
    register_attachment_builder("checkout", confirmation(INVOICE, QR))
    welcome(attachments_from="checkout:chk_01")
    run_worker()
    message = sent_message()
    assert message.get_content_type() == "multipart/mixed"
    assert [p.get_content_type() for p in cast(list[Message], message.get_payload())] == [
        "multipart/related",
        "application/pdf",
    ]


def test_inline_images_alone_make_a_related_message() -> None:
    register_attachment_builder("checkout", confirmation(QR))
    welcome(attachments_from="checkout:chk_01")
    run_worker()
    assert sent_message().get_content_type() == "multipart/related"


def test_a_failing_builder_leaves_the_email_retrying_with_its_error() -> None:
    def broken(argument: str) -> list[Attachment]:
        raise RuntimeError("invoice renderer down")

    register_attachment_builder("checkout", broken)
    queued = welcome(attachments_from="checkout:chk_01")
    run_worker()
    queued.refresh_from_db()
    assert queued.status == OutboundEmail.Status.RETRYING
    assert "RuntimeError: invoice renderer down" in queued.last_error
    assert queued.next_attempt_at is not None
    assert mail.outbox == []


def test_the_retry_after_a_failed_build_sends_the_email_with_its_attachments() -> None:
    attempts: list[str] = []

    def flaky(argument: str) -> list[Attachment]:
        attempts.append(argument)
        if len(attempts) == 1:
            raise RuntimeError("invoice renderer down")
        return [INVOICE]

    register_attachment_builder("checkout", flaky)
    queued = welcome(attachments_from="checkout:chk_01")
    run_worker()
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
    run_worker()
    queued.refresh_from_db()
    assert queued.status == OutboundEmail.Status.SENT
    assert part_named(sent_message(), "invoice-INV-7.pdf").get_payload(decode=True) == PDF


def test_a_builder_returning_something_else_than_attachments_is_a_failed_attempt() -> None:
    register_attachment_builder("checkout", lambda arg: [b"%PDF"])  # type: ignore[list-item]
    queued = welcome(attachments_from="checkout:chk_01")
    run_worker()
    queued.refresh_from_db()
    assert queued.status == OutboundEmail.Status.RETRYING


def test_an_email_without_attachments_is_unchanged() -> None:
    welcome()
    run_worker()
    assert [p.get_content_type() for p in sent_message().walk()] == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]
