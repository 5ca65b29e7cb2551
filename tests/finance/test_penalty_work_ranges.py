"""finance_penalties visits only the ranges of invoices with work in them, so a same-day re-run
and a quiet day cost what there is to do, not the size of the table."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from finance import jobs
from finance.jobs import penalties_accrue
from finance.models import Invoice, PenaltyAccrual
from tests.finance.conftest import invoice, pay

D = Decimal


@pytest.fixture(autouse=True)
def small_ranges(monkeypatch):
    monkeypatch.setattr(jobs, "RANGE", 3)


def run(day: date) -> tuple[dict, int]:
    """The run's counts and the number of ranges it accrued (one ledger INSERT each)."""
    with CaptureQueriesContext(connection) as queries:
        counts = penalties_accrue(datetime(day.year, day.month, day.day, 2, 30, tzinfo=UTC))
    ledger = "INSERT INTO finance_penaltyaccrual"
    return counts, sum(q["sql"].lstrip().startswith(ledger) for q in queries)


@pytest.mark.django_db
def test_a_same_day_re_run_visits_no_range(policy):
    for _ in range(10):
        invoice()
    counts, ranges = run(date(2026, 2, 20))
    assert (counts["invoices"], ranges) == (10, 4)  # ten invoices, three a range

    counts, ranges = run(date(2026, 2, 20))

    assert (counts["invoices"], counts["accrued"], ranges) == (0, 0, 0)


@pytest.mark.django_db
def test_only_ranges_with_an_owed_invoice_or_a_late_payment_are_visited(policy):
    # Ranges of three: [0 1 2] [3 4 5] [6 7 8] [9]; 4 and 9 owe, the others were paid in full.
    invoices = [invoice(debt=D("0.00")) for _ in range(10)]
    owed = [invoices[4], invoices[9]]
    Invoice.objects.filter(pk__in=[i.pk for i in owed]).update(debt=D("1000.00"))
    run(date(2026, 2, 20))

    counts, ranges = run(date(2026, 2, 21))

    assert (counts["invoices"], ranges) == (2, 2)  # the paid ones are final: nothing to do

    # Later that day finance records 300 the client of invoice 4 paid on Feb 15.
    pay(invoices[4], date(2026, 2, 15), "300.00", recorded=date(2026, 2, 21))
    counts, ranges = run(date(2026, 2, 21))

    assert (counts["corrected"], ranges) == (1, 1)
    # Due Jan 31: 15 days on 1,000 to the payment day, then 6 on 700, at 10 % a year.
    assert Invoice.objects.get(pk=invoices[4].pk).penalty == D("5.26")
    assert Invoice.objects.get(pk=invoices[9].pk).penalty == D("5.75")  # 21 days on 1,000
    paid = [i.pk for i in invoices if i not in owed]
    assert not PenaltyAccrual.objects.filter(invoice__in=paid).exists()
