"""Invoices and credit notes: drafts, gapless numbers, issuing, voiding, credit notes per
attendee, by amount and for the rest, the timeline, the API and the PDF."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tessera.billing.credit_notes import (
    CreditExceedsRemaining,
    credited_amount,
    issue_credit_note,
    remaining,
)
from tessera.billing.invoice_pdf import pdf_text
from tessera.billing.invoices import (
    LineSpec,
    create_draft_invoice,
    issue_invoice,
    render_invoice_pdf,
    void_invoice,
)
from tessera.billing.models import Invoice, InvoiceLine
from tessera.core.errors import Conflict, ValidationFailed
from tessera.core.ids import new_id
from tessera.core.money import Money
from tessera.crm.inputs import ContactInput
from tessera.crm.models import Contact, TimelineEntry
from tessera.crm.services import create_contact
from tests.support.api import Api, assert_problem

pytestmark = pytest.mark.django_db

# Attendee 1: 3 x 10.00 less 5.00 at 19% on top = 29.75. Attendee 2: a dinner at 119.00
# including 19% (100.00 + 19.00) and a book at 20.00 plus 7% (21.40). Total 170.15.
LINES = (
    LineSpec("itm_ticket", "att_1", "Ticket", 3, 1000, 500, 1900, False),
    LineSpec("itm_dinner", "att_2", "Dinner", 1, 11900, 0, 1900, True),
    LineSpec("itm_book", "att_2", "Book", 1, 2000, 0, 700, False),
)
TOTAL = 2975 + 11900 + 2140


class Boom(Exception):
    pass


@pytest.fixture
def year() -> int:
    return timezone.localtime().year


@pytest.fixture
def contact() -> Contact:
    person = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
              "company": "Analytical Engines", "street": "1 St James's Square",
              "postal_code": "SW1Y 4JH", "city": "London"}  # fmt: skip
    return create_contact(ContactInput(**person)).record


@pytest.fixture
def draft(contact: Contact) -> Callable[..., Invoice]:
    def make(lines: tuple[LineSpec, ...] = LINES, currency: str = "EUR") -> Invoice:
        return create_draft_invoice(
            bill_to=contact, currency=currency, lines=lines, reference="chk_test"
        )

    return make


@pytest.fixture
def issued(draft: Callable[..., Invoice]) -> Callable[..., Invoice]:
    def make(*, paid: bool = True, **kwargs: Any) -> Invoice:
        return issue_invoice(draft(**kwargs).pk, paid=paid)

    return make


@pytest.fixture
def invoice(issued: Callable[..., Invoice]) -> Invoice:
    return issued()


def number(prefix: str, year: int, n: int) -> str:
    return f"{prefix}-{year}-{n:05d}"


LINE_FIELDS = ("item_id", "attendee_id", "quantity", "unit_price", "discount", "net", "tax",
               "amount")  # fmt: skip


def rows(invoice: Invoice) -> list[tuple[Any, ...]]:
    """What each line says, in order: its item, attendee and amounts."""
    lines = InvoiceLine.objects.filter(invoice=invoice).order_by("position")
    return list(lines.values_list(*LINE_FIELDS))


def negated(line: tuple[Any, ...]) -> tuple[Any, ...]:
    item, attendee, quantity, *amounts = line
    return (item, attendee, quantity, *(-a for a in amounts))


def eur(minor: int) -> str:
    return Money(minor, "EUR").format("en_US")


# --- drafts and numbers ---------------------------------------------------------------------


def test_a_draft_has_no_number(draft: Callable[..., Invoice]) -> None:
    assert draft().number is None


def test_a_draft_is_written_in_two_queries(
    draft: Callable[..., Invoice], django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(2):
        draft()


def test_a_new_drafts_lines_are_read_without_a_query(
    draft: Callable[..., Invoice], django_assert_num_queries: Any
) -> None:
    made = draft()
    with django_assert_num_queries(0):
        assert len(made.lines.all()) == len(LINES)


def test_a_draft_stores_its_priced_total(draft: Callable[..., Invoice]) -> None:
    assert Invoice.objects.get(pk=draft().pk).total == TOTAL


def test_a_draft_stores_the_tax_per_rate(draft: Callable[..., Invoice]) -> None:
    assert Invoice.objects.get(pk=draft().pk).tax_breakdown == [
        {"rate_bp": 700, "net": 2000, "tax": 140},
        {"rate_bp": 1900, "net": 12500, "tax": 2375},
    ]


def test_issuing_numbers_invoices_in_sequence(issued: Callable[..., Invoice], year: int) -> None:
    numbers = [issued().number, issued().number]
    assert numbers == [number("INV", year, 1), number("INV", year, 2)]


def test_an_issued_invoice_is_paid(invoice: Invoice) -> None:
    assert invoice.status == Invoice.Status.PAID


def test_an_invoice_issued_unpaid_is_open(issued: Callable[..., Invoice]) -> None:
    assert issued(paid=False).status == Invoice.Status.OPEN


def test_issuing_an_issued_invoice_changes_nothing(invoice: Invoice) -> None:
    again = issue_invoice(invoice.pk, paid=False)
    assert (again.number, again.status, again.issued_at) == (
        invoice.number,
        invoice.status,
        invoice.issued_at,
    )


def test_issuing_twice_takes_one_number(
    invoice: Invoice, issued: Callable[..., Invoice], year: int
) -> None:
    issue_invoice(invoice.pk, paid=True)
    assert issued().number == number("INV", year, 2)


def test_a_rolled_back_issue_burns_no_number(draft: Callable[..., Invoice], year: int) -> None:
    first, second = draft(), draft()
    with pytest.raises(Boom), transaction.atomic():
        issue_invoice(first.pk, paid=True)
        raise Boom
    assert issue_invoice(second.pk, paid=True).number == number("INV", year, 1)


def test_a_rolled_back_issue_leaves_a_draft(draft: Callable[..., Invoice]) -> None:
    first = draft()
    with pytest.raises(Boom), transaction.atomic():
        issue_invoice(first.pk, paid=True)
        raise Boom
    assert Invoice.objects.get(pk=first.pk).status == Invoice.Status.DRAFT


def test_credit_notes_are_numbered_apart_from_invoices(
    invoice: Invoice, issued: Callable[..., Invoice], year: int
) -> None:
    note = issue_credit_note(invoice.pk, attendee_id="att_1")
    later = issued()
    assert [note.number, later.number] == [number("CN", year, 1), number("INV", year, 2)]


# --- voiding ----------------------------------------------------------------------------------


def test_a_draft_is_voided_without_a_number(draft: Callable[..., Invoice]) -> None:
    voided = void_invoice(draft().pk)
    assert (voided.status, voided.number) == (Invoice.Status.VOID, None)


def test_an_issued_invoice_cannot_be_voided(invoice: Invoice) -> None:
    with pytest.raises(Conflict):
        void_invoice(invoice.pk)


def test_a_void_invoice_is_never_issued(draft: Callable[..., Invoice]) -> None:
    voided = void_invoice(draft().pk)
    with pytest.raises(Conflict):
        issue_invoice(voided.pk, paid=True)


# --- credit notes -----------------------------------------------------------------------------


def test_a_cancellation_negates_exactly_the_attendees_lines(invoice: Invoice) -> None:
    note = issue_credit_note(invoice.pk, attendee_id="att_2", reason="cancelled")
    theirs = [line for line in rows(invoice) if line[1] == "att_2"]
    assert rows(note) == [negated(line) for line in theirs]


def test_a_credit_note_refers_to_its_invoice(invoice: Invoice) -> None:
    note = issue_credit_note(invoice.pk, attendee_id="att_2")
    assert Invoice.objects.get(pk=note.pk).credits_id == invoice.pk


def test_a_credit_note_on_a_paid_invoice_is_paid(invoice: Invoice) -> None:
    assert issue_credit_note(invoice.pk).status == Invoice.Status.PAID


def test_a_credit_note_on_an_open_invoice_is_open(issued: Callable[..., Invoice]) -> None:
    assert issue_credit_note(issued(paid=False).pk).status == Invoice.Status.OPEN


def test_a_partial_credit_gives_back_the_amount(invoice: Invoice) -> None:
    assert issue_credit_note(invoice.pk, amount=5000).total == -5000


def test_a_partial_credit_is_spread_over_the_lines_with_their_tax(invoice: Invoice) -> None:
    # 30.00 over 29.75, 119.00 and 21.40 (of 170.15): 5.25, 20.98 and 3.77 (the cent the
    # division leaves goes to the dinner). Tax in each line's own proportion, half to even:
    # 5.25 x 4.75/29.75 = 0.838 -> 0.84; 20.98 x 19/119 = 3.3497 -> 3.35;
    # 3.77 x 1.40/21.40 = 0.2466 -> 0.25.
    note = issue_credit_note(invoice.pk, amount=3000)
    amounts = [(line[0], line[5], line[6], line[7]) for line in rows(note)]
    assert amounts == [
        ("itm_ticket", -441, -84, -525),
        ("itm_dinner", -1763, -335, -2098),
        ("itm_book", -352, -25, -377),
    ]


def test_a_partial_credit_breaks_its_tax_down_per_rate(invoice: Invoice) -> None:
    note = issue_credit_note(invoice.pk, amount=3000)
    assert Invoice.objects.get(pk=note.pk).tax_breakdown == [
        {"rate_bp": 700, "net": -352, "tax": -25},
        {"rate_bp": 1900, "net": -441 - 1763, "tax": -84 - 335},
    ]


def test_crediting_more_than_remains_is_refused(invoice: Invoice) -> None:
    issue_credit_note(invoice.pk, amount=5000)
    with pytest.raises(CreditExceedsRemaining):
        issue_credit_note(invoice.pk, amount=TOTAL - 5000 + 1)


def test_crediting_too_much_is_409_refund_exceeds_remaining(invoice: Invoice) -> None:
    with pytest.raises(CreditExceedsRemaining) as refused:
        issue_credit_note(invoice.pk, amount=TOTAL + 1)
    assert (refused.value.status, refused.value.code) == (409, "refund_exceeds_remaining")


def test_crediting_too_much_states_the_amounts(invoice: Invoice) -> None:
    with pytest.raises(CreditExceedsRemaining) as refused:
        issue_credit_note(invoice.pk, amount=TOTAL + 1)
    assert refused.value.detail.startswith(f"{eur(TOTAL + 1)} asked; {eur(TOTAL)} of {eur(TOTAL)}")


def test_what_remains_can_be_credited_to_the_cent(invoice: Invoice) -> None:
    issue_credit_note(invoice.pk, amount=5000)
    issue_credit_note(invoice.pk, amount=TOTAL - 5000)
    assert remaining(invoice) == 0


def test_the_rest_is_credited_when_no_amount_is_given(invoice: Invoice) -> None:
    issue_credit_note(invoice.pk, amount=5000)
    assert issue_credit_note(invoice.pk).total == -(TOTAL - 5000)


def test_the_rest_leaves_out_a_cancelled_attendee(invoice: Invoice) -> None:
    issue_credit_note(invoice.pk, attendee_id="att_1")
    rest = issue_credit_note(invoice.pk)
    assert {line[1] for line in rows(rest)} == {"att_2"}


def test_the_rest_after_partial_credits_brings_each_rate_to_zero(invoice: Invoice) -> None:
    issue_credit_note(invoice.pk, amount=3333)
    issue_credit_note(invoice.pk, amount=1234)
    issue_credit_note(invoice.pk)
    per_rate: dict[int, list[int]] = {}
    for doc in Invoice.objects.filter(pk=invoice.pk) | invoice.credit_notes.all():
        for tax in doc.tax_breakdown:
            sums = per_rate.setdefault(tax["rate_bp"], [0, 0])
            sums[0], sums[1] = sums[0] + tax["net"], sums[1] + tax["tax"]
    assert per_rate == {700: [0, 0], 1900: [0, 0]}


def test_a_fully_credited_invoice_refuses_another_credit_note(invoice: Invoice) -> None:
    issue_credit_note(invoice.pk)
    with pytest.raises(CreditExceedsRemaining):
        issue_credit_note(invoice.pk)


def test_an_attendee_without_lines_is_refused(invoice: Invoice) -> None:
    with pytest.raises(ValidationFailed):
        issue_credit_note(invoice.pk, attendee_id="att_nobody")


def test_a_draft_is_not_credited(draft: Callable[..., Invoice]) -> None:
    with pytest.raises(Conflict):
        issue_credit_note(draft().pk)


def test_credited_amount_sums_the_credit_notes(invoice: Invoice) -> None:
    issue_credit_note(invoice.pk, amount=3000)
    issue_credit_note(invoice.pk, attendee_id="att_1")
    assert credited_amount(invoice) == 3000 + 2975 - 525  # att_1 had 5.25 back already


def test_an_issued_invoice_never_changes_after_credit_notes(invoice: Invoice) -> None:
    before = (rows(invoice), Invoice.objects.values().get(pk=invoice.pk))
    issue_credit_note(invoice.pk, amount=1000)
    issue_credit_note(invoice.pk, attendee_id="att_2")
    assert (rows(invoice), Invoice.objects.values().get(pk=invoice.pk)) == before


# --- the timeline -----------------------------------------------------------------------------


def entry(obj: Invoice) -> TimelineEntry:
    return TimelineEntry.objects.get(object_id=obj.pk)


def test_issuing_puts_the_invoice_on_the_contacts_timeline(invoice: Invoice) -> None:
    assert entry(invoice).summary == f"Invoice {invoice.number} issued: {eur(TOTAL)}"


def test_the_invoice_entry_is_on_the_bill_to_contact(invoice: Invoice) -> None:
    assert (entry(invoice).kind, entry(invoice).contact_id) == ("invoice", invoice.bill_to_id)


def test_a_credit_note_is_on_the_contacts_timeline(invoice: Invoice) -> None:
    note = issue_credit_note(invoice.pk, attendee_id="att_1")
    expected = f"Credit note {note.number} for invoice {invoice.number}: {eur(-2975)}"
    assert entry(note).summary == expected


# --- the API ------------------------------------------------------------------------------------


def get_json(api: Api, path: str) -> dict[str, Any]:
    response = api.get(path)
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def test_get_invoice_answers_its_fields(api: Api, invoice: Invoice) -> None:
    body = get_json(api, f"/invoices/{invoice.pk}")
    fields = {key: body[key] for key in body if key not in ("lines", "issued_at", "credit_notes")}
    assert fields == {
        "id": invoice.pk, "kind": "invoice", "number": invoice.number, "status": "paid",
        "currency": "EUR", "bill_to_contact_id": invoice.bill_to_id, "subtotal": 3000 + 11900 + 2000,
        "discount": 500, "tax": 475 + 1900 + 140, "total": TOTAL,
        "taxes": [{"rate_bp": 700, "net": 2000, "tax": 140},
                  {"rate_bp": 1900, "net": 12500, "tax": 2375}],
        "credits_invoice_id": None, "reason": "",
    }  # fmt: skip


def test_get_invoice_answers_its_lines(api: Api, invoice: Invoice) -> None:
    first = get_json(api, f"/invoices/{invoice.pk}")["lines"][0]
    assert first == {
        "id": invoice.lines.order_by("position")[0].pk, "item_id": "itm_ticket",
        "attendee_id": "att_1", "description": "Ticket", "quantity": 3, "unit_price": 1000,
        "discount": 500, "tax_rate_bp": 1900, "tax_inclusive": False, "net": 2500, "tax": 475,
        "amount": 2975,
    }  # fmt: skip


def test_get_invoice_lists_its_credit_notes(api: Api, invoice: Invoice) -> None:
    note = issue_credit_note(invoice.pk, attendee_id="att_1", reason="cancelled")
    notes = get_json(api, f"/invoices/{invoice.pk}")["credit_notes"]
    issued_at = get_json(api, f"/invoices/{note.pk}")["issued_at"]
    assert notes == [
        {"id": note.pk, "number": note.number, "total": -2975, "issued_at": issued_at,
         "reason": "cancelled"}
    ]  # fmt: skip


def test_get_credit_note_names_the_invoice_it_credits(api: Api, invoice: Invoice) -> None:
    note = issue_credit_note(invoice.pk, attendee_id="att_1")
    assert get_json(api, f"/invoices/{note.pk}")["credits_invoice_id"] == invoice.pk


def test_get_draft_has_no_number(api: Api, draft: Callable[..., Invoice]) -> None:
    assert get_json(api, f"/invoices/{draft().pk}")["number"] is None


def test_get_invoice_is_json(api: Api, invoice: Invoice) -> None:
    assert api.get(f"/invoices/{invoice.pk}")["Content-Type"] == "application/json; charset=utf-8"


def test_get_pdf_is_a_pdf(api: Api, invoice: Invoice) -> None:
    assert api.get(f"/invoices/{invoice.pk}.pdf")["Content-Type"] == "application/pdf"


def test_get_pdf_starts_as_a_pdf_does(api: Api, invoice: Invoice) -> None:
    assert api.get(f"/invoices/{invoice.pk}.pdf").content.startswith(b"%PDF-")


def test_get_pdf_holds_the_number(api: Api, invoice: Invoice) -> None:
    assert invoice.number.encode() in api.get(f"/invoices/{invoice.pk}.pdf").content


def test_get_pdf_is_named_after_the_number(api: Api, invoice: Invoice) -> None:
    disposition = api.get(f"/invoices/{invoice.pk}.pdf")["Content-Disposition"]
    assert disposition == f'inline; filename="{invoice.number}.pdf"'


def test_get_pdf_of_a_draft_renders(api: Api, draft: Callable[..., Invoice]) -> None:
    assert api.get(f"/invoices/{draft().pk}.pdf").status_code == 200


@pytest.mark.parametrize("suffix", ["", ".pdf"], ids=["json", "pdf"])
def test_an_unknown_invoice_is_404(api: Api, suffix: str) -> None:
    assert_problem(api.get(f"/invoices/{new_id('inv')}{suffix}"), 404, "not_found")


@pytest.mark.parametrize("suffix", ["", ".pdf"], ids=["json", "pdf"])
def test_invoices_need_an_api_key(invoice: Invoice, suffix: str) -> None:
    assert_problem(Api(None).get(f"/invoices/{invoice.pk}{suffix}"), 401, "unauthorized")


def test_the_document_describes_the_pdf() -> None:
    from tessera.api.v1 import api as v1

    operation = v1.get_openapi_schema()["paths"]["/api/v1/invoices/{invoice_id}.pdf"]["get"]
    content = operation["responses"]["200"]["content"]
    assert content == {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}


# --- the PDF ------------------------------------------------------------------------------------


def pdf(invoice: Invoice) -> bytes:
    """The PDF with its text left readable (fpdf2 compresses page streams otherwise)."""
    return render_invoice_pdf(Invoice.objects.get(pk=invoice.pk), compress=False)


def drawn(text: str) -> bytes:
    """``text`` as the PDF's content stream holds it."""
    return pdf_text(text).encode("latin-1")


def test_the_pdf_shows_the_number(invoice: Invoice) -> None:
    assert drawn(f"{invoice.number}") in pdf(invoice)


def test_the_pdf_shows_the_total(invoice: Invoice) -> None:
    assert drawn(eur(TOTAL)) in pdf(invoice)


def test_the_pdf_shows_the_tax_of_each_rate(invoice: Invoice) -> None:
    assert drawn(f"Tax 7% on {eur(2000)}") in pdf(invoice)


def test_a_credit_note_pdf_names_the_invoice_it_credits(invoice: Invoice) -> None:
    note = issue_credit_note(invoice.pk, attendee_id="att_1", reason="Cannot come")
    assert drawn(f"{invoice.number} of ") in pdf(note)


def test_a_credit_note_pdf_gives_the_reason(invoice: Invoice) -> None:
    note = issue_credit_note(invoice.pk, attendee_id="att_1", reason="Cannot come")
    assert drawn("Cannot come") in pdf(note)


def test_a_credit_note_pdf_is_titled_so(invoice: Invoice) -> None:
    assert drawn("Credit note") in pdf(issue_credit_note(invoice.pk))


@pytest.mark.parametrize(
    ("make", "mark"),
    [
        (lambda draft: draft(), "DRAFT"),
        (lambda draft: void_invoice(draft().pk), "VOID"),
        (lambda draft: issue_invoice(draft().pk, paid=True), "PAID"),
    ],
    ids=["draft", "void", "paid"],
)
def test_the_pdf_is_marked_with_its_status(
    draft: Callable[..., Invoice], make: Callable[..., Invoice], mark: str
) -> None:
    assert drawn(mark) in pdf(make(draft))


def test_the_same_invoice_renders_the_same_bytes(invoice: Invoice) -> None:
    assert pdf(invoice) == pdf(invoice)


def test_a_non_latin_name_renders(draft: Callable[..., Invoice]) -> None:
    made = draft()
    Contact.objects.filter(pk=made.bill_to_id).update(first_name="Zoë Ñandú", last_name="王")
    assert drawn("Zoë Ñandú ?") in pdf(made)


def test_a_non_latin_description_renders(draft: Callable[..., Invoice]) -> None:
    lines = (LineSpec("itm_1", "att_1", "Концерт 王 — ½ ﬁnal ő", 1, 1000),)
    assert drawn("??????? ? — ½ final o") in pdf(draft(lines=lines))


@pytest.mark.parametrize(
    ("text", "safe"),
    [("Zoë Ñandú 王", "Zoë Ñandú ?"), ("€5 “q” \u2013 …", "\x805 \x93q\x94 \x96 \x85"),
     ("Łódź", "?ódz"), ("a\x00b\tc", "ab c"), ("1\u202f000", "1 000")],
    ids=["cjk", "winansi", "no-decomposition", "controls", "narrow-space"],
)  # fmt: skip
def test_pdf_text_keeps_what_the_core_font_can_draw(text: str, safe: str) -> None:
    assert pdf_text(text) == safe


# --- the back office --------------------------------------------------------------------------


@pytest.fixture
def staff() -> Client:
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_the_invoice_admin_page_lists_its_credit_notes(staff: Client, invoice: Invoice) -> None:
    note = issue_credit_note(invoice.pk, attendee_id="att_1")
    page = staff.get(reverse("admin:billing_invoice_change", args=[quote(invoice.pk)]))
    assert note.number in page.content.decode()


def test_the_invoice_admin_serves_the_pdf(staff: Client, invoice: Invoice) -> None:
    response = staff.get(reverse("admin:billing_invoice_pdf", args=[quote(invoice.pk)]))
    assert response["Content-Type"] == "application/pdf"


def test_invoices_cannot_be_changed_in_the_admin(staff: Client, invoice: Invoice) -> None:
    url = reverse("admin:billing_invoice_change", args=[quote(invoice.pk)])
    staff.post(url, {"reason": "edited"})
    assert Invoice.objects.get(pk=invoice.pk).reason == ""


def test_the_invoice_changelist_lists_the_invoice(staff: Client, invoice: Invoice) -> None:
    page = staff.get(reverse("admin:billing_invoice_changelist"))
    assert invoice.number in page.content.decode()
