"""Signed ticket codes: genuine codes verify, anything altered or forged is refused."""

from __future__ import annotations

import base64
import contextlib

import pytest
import segno
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from tessera.events.tickets import (
    InvalidTicketCode,
    TicketClaim,
    public_key_b64,
    public_key_pem,
    sign_ticket,
    verify_ticket,
)

EVENT = "evt_01JD3Z8Q6W1X2Y3Z4A5B6C7D8E"
ATTENDEE = "att_01JD3Z9R7X2Y3Z4A5B6C7D8E9F"
OTHER_ATTENDEE = "att_01JD3ZA0000000000000000000"
# Every character a code may contain, so a replacement keeps the code's shape and reaches
# the signature check rather than stopping at the format check.
CODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-"


def test_a_signed_code_verifies_to_its_attendee_and_event() -> None:
    assert verify_ticket(sign_ticket(ATTENDEE, EVENT)) == TicketClaim(
        event_id=EVENT, attendee_id=ATTENDEE
    )


def test_a_changed_character_anywhere_is_refused() -> None:
    code = sign_ticket(ATTENDEE, EVENT)
    accepted = []
    for i, original in enumerate(code):
        for replacement in CODE_ALPHABET.replace(original, ""):
            altered = code[:i] + replacement + code[i + 1 :]
            try:
                verify_ticket(altered)
            except InvalidTicketCode:
                continue
            accepted.append(altered)
    assert accepted == []


def test_the_last_signature_character_has_one_spelling() -> None:
    # 64 bytes in base32 leave 3 unused bits in the last character: a decoder that ignored
    # them would accept several spellings of one signature.
    code = sign_ticket(ATTENDEE, EVENT)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    spellings = [code[:-1] + c for c in alphabet if c != code[-1]]
    accepted = [s for s in spellings if _verifies(s)]
    assert accepted == []


def test_a_code_signed_with_another_secret_key_is_refused(settings) -> None:
    settings.SECRET_KEY = "the-other-installation"
    foreign = sign_ticket(ATTENDEE, EVENT)
    settings.SECRET_KEY = "this-installation"
    with pytest.raises(InvalidTicketCode):
        verify_ticket(foreign)


def test_editing_the_attendee_in_a_code_does_not_make_a_ticket_for_them() -> None:
    code = sign_ticket(ATTENDEE, EVENT)
    forged = code.replace(ATTENDEE[4:], OTHER_ATTENDEE[4:])
    assert forged != code
    with pytest.raises(InvalidTicketCode):
        verify_ticket(forged)


def test_another_version_is_refused() -> None:
    code = sign_ticket(ATTENDEE, EVENT)
    with pytest.raises(InvalidTicketCode):
        verify_ticket("T2" + code[2:])


@pytest.mark.parametrize(
    "code",
    ["", "T1.", "T1...", "x" * 201, "T1.EVT-ä", "T1.EVT-01JD3Z8Q6W1X2Y3Z4A5B6C7D8E.ATT-x.==="],
)
def test_malformed_input_is_refused(code: str) -> None:
    with pytest.raises(InvalidTicketCode):
        verify_ticket(code)


def test_a_code_with_a_lower_case_signature_is_refused() -> None:
    code = sign_ticket(ATTENDEE, EVENT)
    body, _, signature = code.rpartition(".")
    with pytest.raises(InvalidTicketCode):
        verify_ticket(f"{body}.{signature.lower()}")


@given(st.text(max_size=300))
def test_verify_raises_only_invalid_ticket_code_for_any_text(text: str) -> None:
    with contextlib.suppress(InvalidTicketCode):
        verify_ticket(text)


@given(st.from_regex(r"T1\.[A-Z]{2,6}-[0-9A-Z]{25,27}\.[A-Z]{3}-[0-9A-Z]{26}\.[A-Z2-7=]{100,106}"))
def test_verify_raises_only_invalid_ticket_code_for_code_shaped_text(text: str) -> None:
    with contextlib.suppress(InvalidTicketCode):
        verify_ticket(text)


def test_only_tessera_ids_can_be_signed() -> None:
    with pytest.raises(ValueError, match="public id"):
        sign_ticket("attendee 7", EVENT)


def test_codes_stay_compact() -> None:
    # Ed25519's 64-byte signature alone is 103 base32 characters (86 in base64): the bound
    # that matters for scanning is the QR symbol, checked below.
    assert len(sign_ticket(ATTENDEE, EVENT)) <= 172


def test_a_code_fits_a_version_7_qr_symbol_at_medium_error_correction() -> None:
    qr = segno.make(sign_ticket(ATTENDEE, EVENT), error="m", micro=False, boost_error=False)
    assert int(qr.version) <= 7  # int: never a Micro QR ("M1".."M4")


def test_a_scanner_verifies_a_code_with_the_published_pem_key() -> None:
    code = sign_ticket(ATTENDEE, EVENT)
    key = serialization.load_pem_public_key(public_key_pem().encode())
    assert isinstance(key, Ed25519PublicKey)
    body, _, signature = code.rpartition(".")
    key.verify(base64.b32decode(signature + "="), body.encode("ascii"))  # raises if forged


def test_the_raw_public_key_refuses_a_signature_over_other_bytes() -> None:
    code = sign_ticket(ATTENDEE, EVENT)
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64()))
    body, _, signature = code.rpartition(".")
    with pytest.raises(InvalidSignature):
        key.verify(
            base64.b32decode(signature + "="),
            body.replace(ATTENDEE[4:], OTHER_ATTENDEE[4:]).encode(),
        )


def test_a_configured_seed_replaces_the_key_derived_from_secret_key(settings) -> None:
    derived = public_key_b64()
    settings.TESSERA_TICKET_SIGNING_KEY = base64.b64encode(bytes(range(32))).decode()
    assert public_key_b64() != derived


def test_a_configured_seed_keeps_tickets_valid_across_a_secret_key_change(settings) -> None:
    settings.TESSERA_TICKET_SIGNING_KEY = base64.b64encode(bytes(range(32))).decode()
    code = sign_ticket(ATTENDEE, EVENT)
    settings.SECRET_KEY = "rotated"
    assert verify_ticket(code).attendee_id == ATTENDEE


def _verifies(code: str) -> bool:
    try:
        verify_ticket(code)
    except InvalidTicketCode:
        return False
    return True
