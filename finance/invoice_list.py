"""The invoice list: its filters, its order, its aging table and its pages.

Days past due are counted from today in the company's time zone (settings.TIME_ZONE), the
calendar the penalty job uses, whoever looks: a user in another zone sees the same buckets."""

import hashlib
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.db import transaction
from django.db.models import Aggregate, Count, Q, QuerySet, Sum
from django.utils import timezone
from redis.exceptions import RedisError

from crm import paging
from crm.leads import OneLineErrors
from crm.links import record_url
from crm.models import User
from finance.currencies import money
from finance.models import OWED_FIRST, Invoice
from finance.visibility import invoices_visible_to

logger = logging.getLogger(__name__)

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


def status_of(invoice: Invoice) -> str:
    """Open (something is owed), paid, or a credit (overpaid): from the debt."""
    return "open" if invoice.debt > 0 else "paid" if invoice.debt == 0 else "credit"


def company_today(now: datetime) -> date:
    return timezone.localdate(now, timezone.get_default_timezone())


def days_past_due(invoice: Invoice, today: date) -> int:
    """Days the invoice's debt is past due on `today` (0 when nothing is owed or not yet due):
    the list's, the invoice page's and the CSV's figure, not the nightly run's."""
    return max((today - invoice.due_date).days, 0) if invoice.debt > 0 else 0


def bucket_q(bucket: str, today: date) -> Q:
    """Invoices still owed that are `bucket` days past due on `today`."""
    low, high = BUCKETS[bucket]
    q = Q(debt__gt=0, due_date__lte=today - timedelta(days=low))
    return q & Q(due_date__gte=today - timedelta(days=high)) if high is not None else q


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


def invoices_for_list(user: User, form: InvoiceFilterForm, today: date) -> QuerySet[Invoice]:
    """The invoices `user` may see, filtered as the form says except by bucket (the aging
    table counts every bucket), in the list's order."""
    invoices = invoices_visible_to(user, Invoice.objects.select_related("account"))
    if form.value("status"):
        invoices = invoices.filter(STATUS_OF[form.value("status")])
    if form.value("penalty"):
        invoices = invoices.filter(PENALTY_OF[form.value("penalty")])
    if form.value("account"):
        invoices = invoices.filter(account_id=form.value("account"))
    if q := (form.value("q") or "").strip():
        invoices = invoices.filter(number__icontains=q)
    return invoices.order_by(*ORDER)


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


# The aging table sums every past-due invoice the user may see: at a million invoices that is
# most of a second. It is kept this long, and summed again at once after a change Vigil makes
# (a payment, an invoice saved, a penalty run): see forget_aging.
AGING_SECONDS = 60
_AGING_GENERATION = "finance:aging:generation"


@dataclass
class Aging:
    rows: list[AgingRow]
    at: datetime  # when the sums were taken


# What the cache may raise when its server (Redis) is away; the page then sums at once.
CACHE_ERRORS = (RedisError, OSError)


def aging_table(invoices: QuerySet[Invoice], today: date, now: datetime) -> Aging:
    """Count, debt and penalty of each overdue bucket, per currency (two currencies are never
    added up): the sums of at most AGING_SECONDS ago for the same invoices (the cache key is
    the query itself, so another user's scope or filters never share it), else taken now."""
    totals = _aging_query(invoices, today)
    try:
        sql, params = totals.query.sql_with_params()
    except EmptyResultSet:  # the user may see no invoice at all (a rep of no team)
        return Aging([], now)
    digest = hashlib.sha256(f"{sql}{params}".encode()).hexdigest()
    key, aging = "", None
    try:
        key = f"finance:aging:{cache.get_or_set(_AGING_GENERATION, 0, None)}:{digest}"
        aging = cache.get(key)
    except CACHE_ERRORS:
        logger.warning("The cache is unavailable: the aging table is summed on every view")
    if aging is None:
        aging = Aging(_aging_rows(totals), now)
        if key:
            try:
                cache.set(key, aging, AGING_SECONDS)
            except CACHE_ERRORS:
                logger.warning("The cache is unavailable: the aging table is summed on every view")
    return aging


def forget_aging() -> None:
    """Aging tables summed before now are not shown again: called when a transaction that
    changes invoices or payments commits."""

    def bump() -> None:
        try:
            if not cache.add(_AGING_GENERATION, 1, None):
                cache.incr(_AGING_GENERATION)
        except ValueError:  # evicted between the two calls
            cache.add(_AGING_GENERATION, 1, None)
        except CACHE_ERRORS:
            logger.warning("The cache is unavailable: an aging table may be a minute old")

    transaction.on_commit(bump)


def _aging_query(invoices: QuerySet[Invoice], today: date) -> QuerySet:
    """One query: a conditional COUNT and SUM per bucket, grouped by currency."""
    spec: dict[str, Aggregate] = {}
    for n, bucket in enumerate(BUCKETS):
        where = bucket_q(bucket, today)
        spec[f"count_{n}"] = Count("pk", filter=where)
        spec[f"debt_{n}"] = Sum("debt", filter=where)
        spec[f"penalty_{n}"] = Sum("penalty", filter=where)
    overdue = invoices.filter(debt__gt=0, due_date__lt=today)
    return overdue.order_by().values("currency").annotate(**spec).order_by("currency")


def _aging_rows(totals: Any) -> list[AgingRow]:
    rows = []
    for total in totals:
        for n, bucket in enumerate(BUCKETS):
            rows.append(
                AgingRow(
                    total["currency"],
                    bucket,
                    BUCKET_LABELS[bucket],
                    total[f"count_{n}"],
                    total[f"debt_{n}"] or Decimal(0),
                    total[f"penalty_{n}"] or Decimal(0),
                )
            )
    return rows


def page_of(invoices: QuerySet[Invoice], number: int) -> paging.Page:
    return paging.page_of(invoices, number, PAGE_SIZE, last=MAX_PAGES)


@dataclass
class Row:
    """An invoice as the list shows it."""

    invoice: Invoice
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


def capped_count(invoices: QuerySet[Invoice]) -> int:
    return paging.capped_count(invoices, COUNT_CAP)
