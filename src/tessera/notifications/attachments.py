"""Email attachments made by the worker from a named builder, never stored in the database.

An ``OutboundEmail`` keeps only ``attachments_from = "<builder>:<argument>"`` (for example
``"checkout:chk_01..."``). The worker calls the builder just before sending, so a request
never spends time rendering PDFs and the outbox holds no blobs; a builder that raises is a
failed attempt, retried like an unreachable mail server.

Owning apps register their builders at start-up, in ``AppConfig.ready()``::

    register_attachment_builder("checkout", build_checkout_attachments)

An ``Attachment`` with a ``content_id`` is an inline part (``Content-Disposition: inline``,
``Content-ID: <id>``) shown by the HTML body as ``<img src="cid:id">``; ``AttachmentEmail``
puts such parts in a ``multipart/related`` with the text and HTML alternatives, which is
the structure mail clients need to display them rather than list them as files.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from email import encoders
from email.mime.base import MIMEBase
from email.mime.text import MIMEText
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import SafeMIMEMultipart

MAX_SPEC_LENGTH = 120  # OutboundEmail.attachments_from
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
# RFC 5322 msg-id without its angle brackets: no spaces, brackets or quotes.
_CONTENT_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-]{1,200}")


@dataclass(frozen=True)
class Attachment:
    """A file to send: attached, or inline (referenced by ``cid:``) when it has a content_id."""

    filename: str
    content: bytes
    mimetype: str
    content_id: str | None = None  # without "<>": the HTML says src="cid:<content_id>"

    def __post_init__(self) -> None:
        if not isinstance(self.content, bytes):
            raise TypeError("Attachment.content must be bytes")
        if not self.filename:
            raise ValueError("an attachment needs a filename")
        if "/" not in self.mimetype:
            raise ValueError(f"not a MIME type: {self.mimetype!r}")
        if self.content_id is not None and not _CONTENT_ID.fullmatch(self.content_id):
            raise ValueError(f"not a usable Content-ID: {self.content_id!r}")


Builder = Callable[[str], list[Attachment]]
_builders: dict[str, Builder] = {}


def register_attachment_builder(name: str, builder: Builder) -> None:
    """Make ``"<name>:<argument>"`` specs build with ``builder(argument)``.

    Registering the same builder again is harmless (``ready()`` may run twice in tests);
    a different builder under a taken name is a mistake and refused.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"builder names are lower-case words: {name!r}")
    existing = _builders.get(name)
    if existing is not None and existing is not builder:
        raise ValueError(f"attachment builder {name!r} is already registered")
    _builders[name] = builder


def parse_spec(spec: str) -> tuple[str, str]:
    """``"checkout:chk_01"`` -> ``("checkout", "chk_01")``; LookupError for an unknown name."""
    if len(spec) > MAX_SPEC_LENGTH:
        raise ValueError(f"attachments_from is longer than {MAX_SPEC_LENGTH} characters")
    name, sep, argument = spec.partition(":")
    if not sep:
        raise ValueError(f"attachments_from must be '<builder>:<argument>', not {spec!r}")
    if name not in _builders:
        raise LookupError(f"no attachment builder named {name!r}")
    return name, argument


def build_attachments(spec: str) -> list[Attachment]:
    """Run the builder a spec names. Unknown name: LookupError; whatever the builder raises."""
    name, argument = parse_spec(spec)
    attachments = list(_builders[name](argument))
    for item in attachments:
        if not isinstance(item, Attachment):
            raise TypeError(f"builder {name!r} returned {type(item).__name__}, not Attachment")
    return attachments


class AttachmentEmail(EmailMultiAlternatives):
    """``EmailMultiAlternatives`` that also sends inline parts, related to the HTML body.

    The MIME tree, from the outside in (each level only when it has something to hold)::

        multipart/mixed            the files listed as attachments (PDF, .ics)
          multipart/related        the body and the images it shows by cid:
            multipart/alternative  text/plain, text/html
            image/png              Content-ID: <...>, Content-Disposition: inline
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inline: list[MIMEBase] = []

    def add(self, attachment: Attachment) -> None:
        """Attach a file, or add an inline part when it has a content_id."""
        if attachment.content_id is None:
            self.attach(attachment.filename, attachment.content, attachment.mimetype)
        else:
            self.inline.append(self._inline_part(attachment))

    def _inline_part(self, attachment: Attachment) -> MIMEBase:
        part: MIMEBase
        maintype, _, subtype = attachment.mimetype.partition("/")
        if maintype == "text":
            part = MIMEText(attachment.content.decode("utf-8"), subtype, "utf-8")
        else:
            part = MIMEBase(maintype, subtype)
            part.set_payload(attachment.content)
            encoders.encode_base64(part)
        if attachment.filename.isascii():
            part.add_header("Content-Disposition", "inline", filename=attachment.filename)
        else:  # RFC 2231, as Django does for attachments
            part.add_header(
                "Content-Disposition", "inline", filename=("utf-8", "", attachment.filename)
            )
        part.add_header("Content-ID", f"<{attachment.content_id}>")
        return part

    # Django 5.2 builds the tree in _create_message(): alternatives, then attachments. The
    # related level goes between them. (Django 6 builds messages differently and takes
    # MIMEPart attachments instead; the tests of the MIME structure would show the change.)
    def _create_message(self, msg: Any) -> Any:
        body = self._create_alternatives(msg)  # type: ignore[attr-defined]
        if self.inline:
            related = SafeMIMEMultipart(
                _subtype="related",
                encoding=self.encoding or settings.DEFAULT_CHARSET,
                type=body.get_content_type(),
            )
            related.attach(body)
            for part in self.inline:
                related.attach(part)
            body = related
        return self._create_attachments(body)  # type: ignore[attr-defined]
