"""Signed ticket codes: a scanner can tell a forged ticket without asking the database.

A code names one attendee of one event and carries an Ed25519 signature by Tessera. It
proves *authenticity* only: a ticket cancelled after it was issued still verifies, so the
server (or a revocation list the scanner synced) must still be asked whether it stands.

Format (version 1), e.g. ``T1.EVT-01JD3Z....ATT-01JD3Z....<103 signature characters>``::

    code      = body "." signature
    body      = "T1." event "." attendee
    event     = PREFIX "-" ULID        e.g. "EVT-01JD3Z8Q6W1X2Y3Z4A5B6C7D8E" for evt_01JD3Z...
    attendee  = PREFIX "-" ULID        the id's prefix (2-5 letters) upper-cased, "_" -> "-"
    signature = RFC 4648 base32 of the 64-byte Ed25519 signature, no "=" padding (103 chars)

Every character is in QR's *alphanumeric* set (upper-case letters, digits, ``.`` and
``-``), which packs 5.5 bits per character where base64 needs QR's 8-bit byte mode: at
error correction M the whole code (168 characters for 3-letter prefixes) fits a version 7
symbol (45x45 modules), smaller than the 133 characters of binary base64 would need
(version 8). It is also URL-safe as it stands. Ed25519's 64-byte signature alone is
86 base64 characters, so no encoding of two ULIDs and a signature gets near 100.

How a scanner verifies a code offline (``public_key_pem()`` / ``public_key_b64()`` give the
key; ``public_key_b64`` is the raw 32-byte Ed25519 public key, standard base64)::

    body, _, sig = code.rpartition(".")          # split at the LAST "."
    signature = base64.b32decode(sig + "=")      # 103 chars + one "=" -> 64 bytes
    public_key.verify(signature, body.encode("ascii"))  # the exact bytes signed: the body
    version, event, attendee = body.split(".")   # "T1", "EVT-01JD...", "ATT-01JD..."
    prefix, ulid = event.split("-")              # only the prefix changes case:
    event_id = prefix.lower() + "_" + ulid       # "evt_01JD..." (attendee_id alike)

then checks that ``event_id`` is the event at its door and asks about revocation.
``verify_ticket`` here is stricter than that sketch (exact shape, canonical base32, ASCII,
length) so that every code has one spelling: a changed character is always refused.

The signing key is derived from ``SECRET_KEY`` (HKDF-SHA256), so nothing new must be
configured and rotating ``SECRET_KEY`` re-keys tickets; ``TESSERA_TICKET_SIGNING_KEY``
(base64 of a raw 32-byte seed) pins the key instead, so tickets outlive a SECRET_KEY
rotation and scanners keep their public key.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

VERSION = "T1"
MAX_CODE_LENGTH = 200
_HKDF_INFO = b"tessera ticket signing v1"
_SIGNATURE_CHARS = 103  # ceil(64 * 8 / 5)

# Tessera's public ids (tessera.core.ids): a 2-5 letter prefix and a Crockford ULID.
_ULID = r"[0-9A-HJKMNP-TV-Z]{26}"
_PUBLIC_ID = re.compile(rf"([a-z]{{2,5}})_({_ULID})")
_CODE = re.compile(
    rf"T1\.([A-Z]{{2,5}})-({_ULID})\.([A-Z]{{2,5}})-({_ULID})\.([A-Z2-7]{{{_SIGNATURE_CHARS}}})"
)


class InvalidTicketCode(ValueError):
    """The string is not a ticket code Tessera signed (malformed, altered or forged)."""


@dataclass(frozen=True)
class TicketClaim:
    """What a verified code asserts: this attendee holds a ticket to this event."""

    event_id: str
    attendee_id: str


def sign_ticket(attendee_id: str, event_id: str) -> str:
    """The signed code for one attendee's ticket (deterministic: Ed25519 has no nonce).

    Both ids must be Tessera public ids (``att_<ULID>``, ``evt_<ULID>``); anything else is a
    ``ValueError``, since the compact format relies on their shape.
    """
    body = f"{VERSION}.{_encode_id(event_id)}.{_encode_id(attendee_id)}"
    signature = _private_key().sign(body.encode("ascii"))
    return f"{body}.{base64.b32encode(signature).decode('ascii').rstrip('=')}"


def verify_ticket(code: str) -> TicketClaim:
    """The claim of a genuine code, else ``InvalidTicketCode`` (and never another error)."""
    if not isinstance(code, str) or len(code) > MAX_CODE_LENGTH:
        raise InvalidTicketCode("not a ticket code")
    if not code.isascii():
        raise InvalidTicketCode("a ticket code is ASCII")
    if not code.startswith(VERSION + "."):
        raise InvalidTicketCode("unknown ticket code version")
    match = _CODE.fullmatch(code)
    if match is None:
        raise InvalidTicketCode("malformed ticket code")
    event_prefix, event_ulid, attendee_prefix, attendee_ulid, encoded = match.groups()
    try:
        signature = base64.b32decode(encoded + "=")
    except (binascii.Error, ValueError) as exc:
        raise InvalidTicketCode("bad signature encoding") from exc
    # base32 of 64 bytes leaves 3 spare bits in the last character; a decoder ignores them,
    # so without this check one signature would have several spellings.
    if base64.b32encode(signature).decode("ascii").rstrip("=") != encoded:
        raise InvalidTicketCode("bad signature encoding")
    body = code[: -(_SIGNATURE_CHARS + 1)]
    try:
        _public_key().verify(signature, body.encode("ascii"))
    except InvalidSignature as exc:
        raise InvalidTicketCode("bad signature") from exc
    return TicketClaim(
        event_id=f"{event_prefix.lower()}_{event_ulid}",
        attendee_id=f"{attendee_prefix.lower()}_{attendee_ulid}",
    )


def public_key_pem() -> str:
    """The verification key as a PEM SubjectPublicKeyInfo, for scanners."""
    return (
        _public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def public_key_b64() -> str:
    """The raw 32-byte Ed25519 verification key, standard base64 (44 characters)."""
    raw = _public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def _encode_id(public_id: str) -> str:
    match = _PUBLIC_ID.fullmatch(public_id) if isinstance(public_id, str) else None
    if match is None:
        raise ValueError(f"not a Tessera public id: {public_id!r}")
    prefix, ulid = match.groups()
    return f"{prefix.upper()}-{ulid}"


def _private_key() -> Ed25519PrivateKey:
    # Read the settings on every call and cache on their values, so a test (or a process)
    # that changes SECRET_KEY gets the key that goes with it.
    return _key_for(settings.SECRET_KEY, getattr(settings, "TESSERA_TICKET_SIGNING_KEY", None))


def _public_key() -> Ed25519PublicKey:
    return _key_for(
        settings.SECRET_KEY, getattr(settings, "TESSERA_TICKET_SIGNING_KEY", None)
    ).public_key()


@lru_cache(maxsize=8)
def _key_for(secret_key: str, seed_b64: str | None) -> Ed25519PrivateKey:
    if seed_b64:
        try:
            seed = base64.b64decode(seed_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImproperlyConfigured("TESSERA_TICKET_SIGNING_KEY is not base64") from exc
        if len(seed) != 32:
            raise ImproperlyConfigured("TESSERA_TICKET_SIGNING_KEY must be 32 bytes (base64)")
        return Ed25519PrivateKey.from_private_bytes(seed)
    if not secret_key:
        raise ImproperlyConfigured("SECRET_KEY is needed to sign tickets")
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        secret_key.encode("utf-8")
    )
    return Ed25519PrivateKey.from_private_bytes(seed)
