"""The invoice list: its filters, its order, its aging table and its pages.

Days past due are counted from today in the company's time zone (settings.TIME_ZONE), the
calendar the penalty job uses, whoever looks: a user in another zone sees the same buckets."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import Aggregate, Count, Q, QuerySet, Sum
from django.utils import timezone

from crm import paging
from crm.leads import OneLineErrors
from crm.links import record_url
from crm.matching import TRIGRAM_WORD, contains
from crm.models import User
from finance.currencies import money
from finance.models import OWED_FIRST, AgingDay, Invoice
from finance.visibility import aging_days_visible_to, invoices_visible_to

PAGE_SIZE = paging.PAGE_SIZE
# Pages are counted by offset up to here (1,000 invoices); past that, narrow the filters.
MAX_PAGES = 20
COUNT_CAP = PAGE_SIZE * MAX_PAGES

# Overdue buckets: days past due, lowest and highest (None: no end).
BUCKETS = {
    "1-30": (1, 30),
    "31-60": (31, 60),
    "61-90": (61, 90),
    "90+": (91, None),
}
BUCKET_LABELS = {
    "1-30": "1–30 days",
    "31-60": "31–60 days",
    "61-90": "61–90 days",
    "90+": "Over 90 days",
}
STATUSES = [("open", "Open (owed)"), ("paid", "Paid"), ("credit", "Credit (overpaid)")]
STATUS_OF = {"open": Q(debt__gt=0), "paid": Q(debt=0), "credit": Q(debt__lt=0)}
PENALTY_OF = {
    "yes": Q(penalty__gt=0),
    "no": Q(penalty=0),
    "failed": ~Q(penalty_error=""),
}

# Past due first: what is owed before what is not, then by due date (the most overdue first,
# then what falls due soonest), then by id. The index invoice_list_order has this order.
ORDER = (OWED_FIRST, "due_date", "pk")


@dataclass(frozen=True, slots=True)
class ListedInvoice:
    """An invoice as the list reads it: the values its row shows (crm.paging.rows_as), not an
    invoice and its account as model instances."""

    pk: int
    number: str
    account_id: int
    account_name: str
    due_date: date
    currency: str
    amount: Decimal
    debt: Decimal
    penalty: Decimal
    penalty_error: str


LISTED_COLUMNS = (
    "pk",
    "number",
    "account_id",
    "account__name",
    "due_date",
    "currency",
    "amount",
    "debt",
    "penalty",
    "penalty_error",
)


def listed_invoices(invoices: QuerySet[Invoice]) -> list[ListedInvoice]:
    return paging.rows_as(ListedInvoice, invoices, LISTED_COLUMNS)


def status_of(invoice: Invoice | ListedInvoice) -> str:
    """Open (something is owed), paid, or a credit (overpaid): from the debt."""
    return "open" if invoice.debt > 0 else "paid" if invoice.debt == 0 else "credit"


def company_today(now: datetime) -> date:
    return timezone.localdate(now, timezone.get_default_timezone())


def days_past_due(invoice: Invoice | ListedInvoice, today: date) -> int:
    """Days the invoice's debt is past due on `today` (0 when nothing is owed or not yet due):
    the list's, the invoice page's and the CSV's figure, not the nightly run's."""
    return max((today - invoice.due_date).days, 0) if invoice.debt > 0 else 0


def days_q(bucket: str, today: date) -> Q:
    """Due dates `bucket` days past on `today`."""
    low, high = BUCKETS[bucket]
    q = Q(due_date__lte=today - timedelta(days=low))
    return q & Q(due_date__gte=today - timedelta(days=high)) if high is not None else q


def bucket_q(bucket: str, today: date) -> Q:
    """Invoices still owed that are `bucket` days past due on `today`."""
    return Q(debt__gt=0) & days_q(bucket, today)


class InvoiceFilterForm(OneLineErrors, paging.Filters, forms.Form):
    q = forms.CharField(label="Number", required=False, max_length=40)
    bucket = forms.ChoiceField(
        label="Past due",
        required=False,
        choices=[("", "Any"), *BUCKET_LABELS.items()],
    )
    penalty = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any"),
            ("yes", "With a penalty"),
            ("no", "Without"),
            ("failed", "Could not be computed"),
        ],
    )
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *STATUSES])
    account = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    page = forms.IntegerField(required=False, min_value=1, max_value=MAX_PAGES)

    def clean_q(self) -> str:
        """Any words: punctuation alone may be a whole number (number_search)."""
        return (self.cleaned_data.get("q") or "").strip()


def invoices_for_list(user: User, form: InvoiceFilterForm, today: date) -> QuerySet[Invoice]:
    """The invoices `user` may see, filtered as the form says except by bucket (the aging
    table counts every bucket), in the list's order."""
    invoices = invoices_visible_to(user, Invoice.objects.all())
    if form.value("status"):
        invoices = invoices.filter(STATUS_OF[form.value("status")])
    if form.value("penalty"):
        invoices = invoices.filter(PENALTY_OF[form.value("penalty")])
    if form.value("account"):
        invoices = invoices.filter(account_id=form.value("account"))
    if q := form.query():
        invoices = invoices.filter(number_search(q))
    return invoices.order_by(*ORDER)


DIGITS = re.compile(r"\d{3,}")  # a run of digits a trigram index can look for


def number_search(words: str) -> Q:
    """Invoices whose number holds `words`, in any case, from three letters or digits in a row
    (its trigram index); with fewer, the number that is `words` as typed or in capitals ("A-12":
    its unique index), where looking inside every number would read and test each invoice.

    The index is read for the longest run of digits in the words, when they have one of three
    or more, and what it finds is tested on the whole words: a series' letters ("INV-") are in
    every number, and their trigrams' lists in the index are as long as the table ("INV-00123"
    at a million invoices: 13 ms of reading the index for it, 2 ms for "00123")."""
    if TRIGRAM_WORD.search(words):
        digits = max(DIGITS.findall(words), key=len, default="")
        return contains("number", words, digits)
    return Q(number__in={words, words.upper()})


def in_bucket(invoices: QuerySet[Invoice], form: InvoiceFilterForm, today: date):
    bucket = form.value("bucket")
    return invoices.filter(bucket_q(bucket, today)) if bucket else invoices


@dataclass
class AgingRow:
    currency: str
    bucket: str
    label: str
    count: int
    debt: Decimal
    penalty: Decimal

    @property
    def debt_shown(self) -> str:
        return money(self.debt, self.currency)

    @property
    def penalty_shown(self) -> str:
        return money(self.penalty, self.currency)


@dataclass
class Aging:
    rows: list[AgingRow]
    summed: bool  # summed from the invoices listed (a search, an account), not the rollup


def aging_table(
    user: User,
    form: InvoiceFilterForm,
    listed: QuerySet[Invoice],
    today: date,
    keys: list[int] | None = None,
) -> Aging:
    """Count, debt and penalty of each overdue bucket, per currency (two currencies are never
    added up), of the invoices the list shows whatever their bucket. Read from the rollup the
    database keeps (finance_agingday, finance/triggers.py): a few rows a day, not every
    past-due invoice. A number search or one account's invoices are few: summed from them,
    by key when the search read every listed invoice's key (`keys`)."""
    if form.query() or form.value("account"):
        summed = listed if keys is None else Invoice.objects.filter(pk__in=keys)
        return Aging(_aging_rows(_aging_query(summed, today)), summed=True)
    days = aging_days_visible_to(user, AgingDay.objects.filter(due_date__lt=today))
    status = form.value("status")
    if status and status != "open":  # paid or a credit: nothing is owed, nothing is past due
        days = days.none()
    if penalty := form.value("penalty"):
        days = days.filter(ROLLUP_PENALTY_OF[penalty])
    spec = _per_bucket(
        lambda bucket: days_q(bucket, today), lambda where: Sum("invoices", filter=where)
    )
    totals = days.order_by().values("currency").annotate(**spec).order_by("currency")
    # A currency whose invoices were all paid since the rollup was last folded sums to nothing.
    counts = [f"count_{n}" for n in range(len(BUCKETS))]
    owed = [total for total in map(dict, totals) if any(total[count] for count in counts)]
    return Aging(_aging_rows(owed), summed=False)


# PENALTY_OF, for the rollup's rows.
ROLLUP_PENALTY_OF = {"yes": Q(penalty_sign=1), "no": Q(penalty_sign=0), "failed": Q(failed=True)}


def _aging_query(invoices: QuerySet[Invoice], today: date) -> QuerySet:
    """One query: a conditional COUNT and SUM per bucket, grouped by currency."""
    spec = _per_bucket(
        lambda bucket: bucket_q(bucket, today), lambda where: Count("pk", filter=where)
    )
    overdue = invoices.filter(debt__gt=0, due_date__lt=today)
    return overdue.order_by().values("currency").annotate(**spec).order_by("currency")


def _per_bucket(where: Callable[[str], Q], count: Callable[[Q], Aggregate]) -> dict[str, Aggregate]:
    """The aggregates of the aging table, per bucket: `count` and the sums of debt and penalty
    over the rows `where` says are in it."""
    spec: dict[str, Aggregate] = {}
    for n, bucket in enumerate(BUCKETS):
        spec[f"count_{n}"] = count(where(bucket))
        spec[f"debt_{n}"] = Sum("debt", filter=where(bucket))
        spec[f"penalty_{n}"] = Sum("penalty", filter=where(bucket))
    return spec


def _aging_rows(totals: Any) -> list[AgingRow]:
    rows = []
    for total in totals:
        for n, bucket in enumerate(BUCKETS):
            rows.append(
                AgingRow(
                    total["currency"],
                    bucket,
                    BUCKET_LABELS[bucket],
                    total[f"count_{n}"] or 0,
                    total[f"debt_{n}"] or Decimal(0),
                    total[f"penalty_{n}"] or Decimal(0),
                )
            )
    return rows


def listed(invoices: QuerySet[Invoice], form: InvoiceFilterForm) -> paging.Listed:
    """The page the form asks for and the count, to COUNT_CAP; a number search reads its
    matches' keys (paging.listed)."""
    number, searching = form.value("page") or 1, bool(form.query())
    return paging.listed(
        invoices,
        number,
        PAGE_SIZE,
        searching=searching,
        cap=COUNT_CAP,
        last=MAX_PAGES,
        read=listed_invoices,
    )


@dataclass
class Row:
    """An invoice as the list shows it."""

    invoice: ListedInvoice
    url: str
    days_past_due: int
    status: str
    amount: str
    debt: str
    penalty: str


STATUS_LABELS = dict(STATUSES)


def rows_of(page: paging.Page, today: date) -> list[Row]:
    rows = []
    for invoice in page.rows:
        code = invoice.currency
        rows.append(
            Row(
                invoice,
                record_url("invoice_detail", invoice.pk),
                days_past_due(invoice, today),
                STATUS_LABELS[status_of(invoice)],
                money(invoice.amount, code),
                money(invoice.debt, code),
                money(invoice.penalty, code),
            )
        )
    return rows
