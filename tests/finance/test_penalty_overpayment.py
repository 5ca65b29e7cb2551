"""Money past zero: an overpayment is a credit, a refund makes the balance owed again, and the
balance bearing interest never exceeds what was owed, however the days are split into runs."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from finance.jobs import penalties_accrue
from finance.models import Invoice, Payment, PenaltyAccrual, PenaltyPolicy
from tests.factories import InvoiceFactory

D = Decimal
FIRST_DAY = date(2026, 2, 1)  # the first day overdue: £1,000 due on Jan 31


def run(day: date) -> dict:
    return penalties_accrue(datetime(day.year, day.month, day.day, 2, 30, tzinfo=UTC))


def pay(inv: Invoice, on: date, amount: str, *, debt_after: str) -> None:
    """Enter a payment at noon on its day (after that day's run), with the debt as recorded."""
    Payment.objects.create(
        invoice=inv,
        paid_on=on,
        amount=D(amount),
        recorded_at=datetime.combine(on, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12),
    )
    Invoice.objects.filter(pk=inv.pk).update(debt=D(debt_after))


def accrue(inv: Invoice, payments: list[tuple[date, str, str]], runs: list[date]) -> list[dict]:
    """Run the job on each of `runs`, entering each payment on its day; the counts of each run."""
    counts, waiting = [], list(payments)
    for day in runs:
        for on, amount, debt_after in [p for p in waiting if p[0] < day]:
            waiting.remove((on, amount, debt_after))
            pay(inv, on, amount, debt_after=debt_after)
        counts.append(run(day))
    inv.refresh_from_db()
    return counts


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@pytest.fixture
def invoice(db):
    PenaltyPolicy.objects.create(name="Default", annual_rate=D("13.25"))
    return InvoiceFactory(
        voucher_date=date(2026, 1, 1), payment_terms_days=30, amount=D(1000), debt=D(1000)
    )


SPLITS = {
    "one run": [date(2026, 3, 2)],
    "daily runs": days(FIRST_DAY, date(2026, 3, 2)),
}


@pytest.mark.django_db
@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize(
    "debt_after",
    ["-200.00", "0.00"],
    ids=["overpayment recorded as a credit", "debt clamped to zero"],
)
def test_an_overpayment_bears_interest_only_on_what_was_owed(invoice, split, debt_after):
    """£1,200 paid on day 10 of £1,000 at 13.25 %: 10 days on £1,000, whatever was recorded."""
    counts = accrue(invoice, [(date(2026, 2, 10), "1200.00", debt_after)], SPLITS[split])

    assert invoice.penalty == D("3.63")  # 1000 x 13.25 % x 10 / 365 = 3.630
    assert [c["data_errors"] for c in counts] == [0] * len(counts)
    assert not invoice.penalty_open  # final: no later run looks at it again
    later = run(date(2026, 3, 3))
    assert (later["invoices"], later["data_errors"], later["accrued"]) == (0, 0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("split", SPLITS)
def test_a_refund_of_the_credit_makes_the_balance_owed_again(invoice, split):
    """£1,200 paid on day 10, £500 refunded on day 20: £300 is owed again from day 21."""
    payments = [
        (date(2026, 2, 10), "1200.00", "-200.00"),
        (date(2026, 2, 20), "-500.00", "300.00"),
    ]

    counts = accrue(invoice, payments, SPLITS[split])

    # (1000 x 10 days + 0 for days 11-20 + 300 x 10 days: Feb 21 - Mar 2) x 13.25 % / 365
    assert invoice.penalty == D("4.72")  # 13000 x 13.25 % / 365 = 4.719
    assert invoice.penalty_open and invoice.days_overdue == 30
    assert [c["data_errors"] for c in counts] == [0] * len(counts)


@pytest.mark.django_db
def test_the_ledger_keeps_the_balance_that_bore_interest(invoice):
    pay(invoice, date(2026, 2, 10), "1200.00", debt_after="-200.00")

    run(date(2026, 3, 2))

    row = PenaltyAccrual.objects.get(invoice=invoice)
    assert (row.period_start, row.period_end) == (FIRST_DAY, date(2026, 2, 10))
    assert row.balance_days == D("10000")  # £1,000 for 10 days: not £1,200, not -£200 after
