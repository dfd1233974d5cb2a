"""Shop (a cart paid from the wallet) and buying credit by card."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods

from tessera.billing.models import Transaction
from tessera.billing.services import settle_from_gateway
from tessera.core.errors import ProblemError
from tessera.core.money import minor_unit_digits
from tessera.loyalty.credit import PURPOSE, points_for, purchase_credit
from tessera.loyalty.models import Member, Order, Product, WalletTransaction
from tessera.loyalty.ordering import OrderLineSpec, place_order
from tessera.portal import cart as carts
from tessera.portal.forms import KeyedForm
from tessera.portal.identity import Viewer, member_page, program_member
from tessera.portal.pages import page
from tessera.portal.submissions import Claimed, attempt, claim


@require_GET
@member_page
def shop(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    member = program_member(viewer)
    products = list(
        Product.objects.filter(program=member.program, active=True).order_by("name")[:200]
    )
    context = {
        "products": products,
        "cart": carts.Cart.of(request.session),
        "balance": member.wallet.balance,
    }
    return page(request, viewer, "portal/shop.html", context, section="shop")


class CartLineForm(forms.Form):
    product_id = forms.CharField(max_length=40)
    quantity = forms.IntegerField(min_value=0, max_value=100)


@require_http_methods(["GET", "POST"])
@member_page
def cart(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    """GET: the cart. POST ``product_id`` + ``quantity``: set a line (0 removes it); POST
    ``order``: pay the cart from the wallet, once per form key."""
    member = program_member(viewer)
    basket = carts.Cart.of(request.session)
    if request.method == "POST" and "order" not in request.POST:
        line = CartLineForm(request.POST)
        if (
            line.is_valid()
            and Product.objects.filter(
                pk=line.cleaned_data["product_id"], program=member.program, active=True
            ).exists()
        ):
            basket.set(line.cleaned_data["product_id"], line.cleaned_data["quantity"])
            basket.save(request.session)
        if request.headers.get("HX-Request"):
            return page(request, viewer, "portal/cart_badge.html", {"cart": basket})
        return HttpResponseRedirect("/shop/cart")
    if request.method == "POST":
        return _order(request, viewer, member, basket)
    return _cart_page(request, viewer, member, basket, KeyedForm())


def _cart_page(
    request: HttpRequest, viewer: Viewer, member: Member, basket: carts.Cart, form: KeyedForm,
    error: ProblemError | None = None, status: int = 200,
) -> HttpResponse:  # fmt: skip
    lines = basket.lines(member.program_id)
    total = sum(line.total for line in lines)
    balance = member.wallet.balance
    context = {
        "lines": lines, "total": total, "balance": balance, "missing": max(0, total - balance),
        "form": form, "error": error, "cart": basket,
    }  # fmt: skip
    return page(request, viewer, "portal/cart.html", context, section="shop", status=status)


def _order(
    request: HttpRequest, viewer: Viewer, member: Member, basket: carts.Cart
) -> HttpResponse:
    form = KeyedForm(request.POST)
    form.is_valid()
    lines = [
        OrderLineSpec(line.product.pk, line.quantity) for line in basket.lines(member.program_id)
    ]
    # The key is claimed before the cart is looked at: a second click whose session was read
    # after the first click emptied the cart must still land on the first click's order.
    claimed = claim(request.user, form.cleaned_data.get("form_key", ""), "order")
    if not isinstance(claimed, Claimed):
        return claimed
    if not lines:
        claimed.release()
        return HttpResponseRedirect("/shop")
    outcome = attempt(lambda: place_order(member.pk, lines).order)
    if outcome.error is not None or outcome.value is None:
        claimed.release()
        member.wallet.refresh_from_db(fields=["balance"])
        return _cart_page(
            request,
            viewer,
            member,
            basket,
            KeyedForm(),
            outcome.error,
            status=outcome.error.status if outcome.error else 500,
        )
    basket.clear(request.session)
    return claimed.done(f"/shop/orders/{outcome.value.pk}")


@require_GET
@member_page
def order(request: HttpRequest, viewer: Viewer, order_id: str) -> HttpResponse:
    member = program_member(viewer)
    found = (
        Order.objects.filter(pk=order_id, member=member)
        .select_related("wallet_transaction")
        .prefetch_related("lines__product")
        .first()
    )
    if found is None:
        raise Http404("no such order")
    return page(request, viewer, "portal/order.html", {"order": found}, section="shop")


class CreditForm(KeyedForm):
    amount = forms.DecimalField(
        label=_("Amount"), min_value=Decimal("1"), max_value=Decimal("10000"), decimal_places=2,
        help_text=_("In your program's currency."),
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )  # fmt: skip
    payment_method_id = forms.CharField(required=False, widget=forms.HiddenInput, max_length=255)

    def __init__(self, *args: object, currency: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.digits = minor_unit_digits(currency)

    def clean_amount(self) -> Decimal:
        value: Decimal = self.cleaned_data["amount"]
        if (value * 10**self.digits) % 1:
            raise forms.ValidationError(
                _("Use at most %(n)d decimals in this currency.") % {"n": self.digits}
            )
        return value

    def minor_units(self) -> int:
        """The amount in the currency's minor units (exact: ``clean_amount`` checked it)."""
        return int(self.cleaned_data["amount"] * 10**self.digits)

    def clean_payment_method_id(self) -> str:
        value = str(self.cleaned_data.get("payment_method_id") or "")
        if not value.startswith("pm_"):
            raise forms.ValidationError(_("Enter your card details."))
        return value


@require_http_methods(["GET", "POST"])
@member_page
def credit(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    member = program_member(viewer)
    currency = member.program.currency
    if request.method == "GET":
        initial = {"amount": request.GET.get("amount") or "25.00"}
        return _credit_page(request, viewer, member, CreditForm(initial=initial, currency=currency))
    form = CreditForm(request.POST, currency=currency)
    if not form.is_valid():
        return _credit_page(request, viewer, member, form, status=422)
    claimed = claim(request.user, form.cleaned_data["form_key"], "credit")
    if not isinstance(claimed, Claimed):
        return claimed
    amount = form.minor_units()
    outcome = attempt(
        lambda: purchase_credit(
            member.pk, amount=amount, currency=currency,
            payment_method_id=form.cleaned_data["payment_method_id"],
            request_key=f"portal:{request.user.pk}:{claimed.row.key}",
        ),
        atomic=False,
    )  # fmt: skip
    if outcome.error is not None or outcome.value is None:
        claimed.release()
        fresh = CreditForm(initial={"amount": form.cleaned_data["amount"]}, currency=currency)
        return _credit_page(
            request,
            viewer,
            member,
            fresh,
            outcome.error,
            status=outcome.error.status if outcome.error else 500,
        )
    txn = outcome.value.transaction
    if outcome.value.status == "requires_action":
        claimed.done(f"/credit/{txn.pk}")
        context = {"client_secret": outcome.value.client_secret, "txn": txn}
        return page(
            request, viewer, "portal/credit_confirm.html", context, section="wallet", status=202
        )
    return claimed.done(f"/credit/{txn.pk}")


def _credit_page(
    request: HttpRequest, viewer: Viewer, member: Member, form: CreditForm,
    error: ProblemError | None = None, status: int = 200,
) -> HttpResponse:  # fmt: skip
    currency = member.program.currency
    context = {
        "form": form, "error": error, "currency": currency,
        "rate": points_for(member, 10 ** minor_unit_digits(currency)),
        "balance": member.wallet.balance,
    }  # fmt: skip
    return page(request, viewer, "portal/credit.html", context, section="wallet", status=status)


@require_http_methods(["GET", "POST"])
@member_page
def credit_receipt(request: HttpRequest, viewer: Viewer, transaction_id: str) -> HttpResponse:
    """The receipt. A POST comes back from 3-D Secure: ask Stripe what happened, then show it."""
    member = program_member(viewer)
    txn = (
        Transaction.objects.filter(pk=transaction_id, purpose=PURPOSE, purpose_id=member.pk)
        .select_related("payment_method")
        .first()
    )
    if txn is None:
        raise Http404("no such purchase")
    if request.method == "POST" and txn.status == Transaction.Status.PENDING:
        txn = settle_from_gateway(txn.pk)
        return HttpResponseRedirect(f"/credit/{txn.pk}")
    wtx = WalletTransaction.objects.filter(journal_entry__reference=f"topup:{txn.pk}").first()
    member.wallet.refresh_from_db(fields=["balance"])
    context = {"txn": txn, "wtx": wtx, "card": txn.payment_method, "balance": member.wallet.balance}
    return page(request, viewer, "portal/credit_receipt.html", context, section="wallet")
