"""The invoice pages: the list (with its aging table and CSV export) and an invoice's page,
where finance records payments. Who sees which invoice: finance/visibility.py."""

from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, F, OuterRef, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from crm import paging
from crm.models import Account
from crm.visibility import visible_to
from finance import invoice_list
from finance.currencies import minor_unit, money
from finance.exports import invoices_csv
from finance.forms import PaymentForm
from finance.invoice_list import InvoiceFilterForm, company_today
from finance.models import Invoice, PenaltyPolicy
from finance.services import record_payment
from finance.visibility import invoices_visible_to, may_record_payments, sees_every_invoice


def _today():
    return company_today(timezone.now())


# An invoice page lists this many of its payments and ledger rows, the latest first.
HISTORY = 500


@login_required
@require_GET
def invoices(request):
    form = InvoiceFilterForm(request.GET)
    form.is_valid()  # the valid parameters apply; the others are named above the list
    today = _today()
    listed = invoice_list.invoices_for_list(request.user, form, today)
    shown = invoice_list.listed(invoice_list.in_bucket(listed, form, today), form)
    # A search without a bucket read every match's key (when few): the aging table sums those.
    keys = None if form.value("bucket") else shown.keys
    context = {
        "form": form,
        "today": today,
        "aging": invoice_list.aging_table(request.user, form, listed, today, keys=keys),
        **shown.context(),
        "rows": invoice_list.rows_of(shown.page, today),
        "account": _account(request.user, form.value("account")),
        "query": _without(request.GET, "page"),
        "without_account": _without(request.GET, "page", "account"),
        "problems": form.error_lines(),
    }
    return paging.list_response(
        request, "finance/invoices.html", "finance/_invoice_rows.html", context
    )


@login_required
@require_GET
def invoices_export(request):
    form = InvoiceFilterForm(request.GET)
    form.is_valid()
    today = _today()
    listed = invoice_list.invoices_for_list(request.user, form, today)
    return invoices_csv(
        invoice_list.in_bucket(listed, form, today), f"invoices-{today}.csv", today=today
    )


def _account(user, pk: int | None) -> Account | None:
    """The account the list is narrowed to, for its name: one the user may see, or one with an
    invoice they may see (finance sees every invoice, not every account: an account without
    an invoice of theirs is not named)."""
    if pk is None:
        return None
    accounts = Account.objects.only("name").filter(pk=pk)
    if user.is_administrator:
        return accounts.first()
    theirs = Q(pk__in=visible_to(user, Account.objects.filter(pk=pk)).values("pk"))
    if sees_every_invoice(user):
        invoiced = invoices_visible_to(user, Invoice.objects.filter(account=OuterRef("pk")))
        theirs |= Q(Exists(invoiced))
    return accounts.filter(theirs).first()


def _without(params, *names: str) -> str:
    params = params.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()


def _invoice(user, pk: int) -> Invoice:
    return get_object_or_404(
        invoices_visible_to(user, Invoice.objects.select_related("account")), pk=pk
    )


@login_required
@require_GET
def invoice_detail(request, pk: int):
    invoice = _invoice(request.user, pk)
    return _invoice_page(request, invoice, PaymentForm(invoice=invoice, today=_today()))


def _invoice_page(request, invoice: Invoice, form: PaymentForm, status: int = 200):
    code, today = invoice.currency, form.today
    policy = (
        PenaltyPolicy.objects.filter(Q(account=invoice.account_id) | Q(account__isnull=True))
        .order_by(F("account").asc(nulls_last=True))
        .first()
    )
    accruals = invoice.accruals.order_by("-end_day", "-pk")[:HISTORY]
    payments = invoice.payments.order_by("-paid_on", "-pk")[:HISTORY]
    context = {
        "invoice": invoice,
        "status_label": invoice_list.STATUS_LABELS[invoice_list.status_of(invoice)],
        "days_past_due": invoice_list.days_past_due(invoice, today),
        "amounts": {
            "amount": money(invoice.amount, code),
            "debt": money(invoice.debt, code),
            "penalty": money(invoice.penalty, code),
            "penalty_accrued": money(invoice.penalty_accrued, code),
            "total_due": money(invoice.total_due, code),
        },
        "policy": policy,
        "accruals": [
            {
                "start": a.period_start,
                "end": a.period_end,
                "days": a.days,
                "base": money(average(a.balance_days, a.days, code), code),
                "rate": a.annual_rate.normalize(),
                "fees": money(a.fees, code),
                "amount": money(a.amount, code),
            }
            for a in _with_invoice(accruals, invoice)
        ],
        "payments": [(p, money(p.amount, code)) for p in payments],
        "form": form,
        "may_record": may_record_payments(request.user),
        # Reminders follow the sales rule (notifications/views.py remind): finance of no
        # team would be refused one on another team's invoice.
        "may_remind": request.user.is_administrator
        or invoice.account.team_id in (request.user.team_id,)
        and invoice.account.team_id,
        "today": today,
    }
    return render(request, "finance/invoice.html", context, status=status)


def _may_remind(user, invoice: Invoice) -> bool:
    """Reminders follow the sales rule (notifications/views.py remind): finance, of no team,
    would be refused one on another team's invoice, so the form is not offered."""
    team = invoice.account.team_id
    return user.is_administrator or (team is not None and team == user.team_id)


def average(balance_days: Decimal, days: int, code: str) -> Decimal:
    """The balance that bore interest on an average day of a ledger row, in minor units."""
    return (balance_days / max(days, 1)).quantize(Decimal(1).scaleb(-minor_unit(code)))


def _with_invoice(rows, invoice: Invoice):
    """Ledger rows with their invoice set, so that their money needs no query of its own."""
    for row in rows:
        row.invoice = invoice
        yield row


@login_required
@require_POST
def invoice_payment(request, pk: int):
    invoice = _invoice(request.user, pk)
    if not may_record_payments(request.user):
        raise PermissionDenied
    form = PaymentForm(request.POST, invoice=invoice, today=_today())
    if not form.is_valid():
        return _invoice_page(request, invoice, form, status=400)
    try:
        payment = record_payment(
            invoice, form.cleaned_data["amount"], form.cleaned_data["paid_on"], timezone.now()
        )
    except ValidationError as error:  # the debt moved meanwhile (another payment), or the day
        form.add_error(None, error)
        invoice.refresh_from_db()
        return _invoice_page(request, invoice, form, status=400)
    messages.success(
        request,
        f"Payment of {money(payment.amount, invoice.currency)} on {payment.paid_on} recorded: "
        f"the debt is now {money(invoice.debt, invoice.currency)}. Tonight's penalty run "
        "corrects the penalty for it.",
    )
    return redirect("invoice_detail", pk=invoice.pk)
