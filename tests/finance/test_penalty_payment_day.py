"""The payment day: does a paid amount still bear interest on the day it is paid?"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from finance.jobs import penalties_accrue
from finance.models import Invoice, Payment, PenaltyPolicy
from tests.factories import InvoiceFactory

D = Decimal


def thirty_days_with_400_paid_on_day_10() -> Invoice:
    """£1,000 due Jan 31 at 13.25 %; £400 paid on Feb 10 (day 10 overdue); as of Mar 2
    (day 30)."""
    inv = InvoiceFactory(
        voucher_date=date(2026, 1, 1), payment_terms_days=30, amount=D(1000), debt=D(600)
    )
    Payment.objects.create(
        invoice=inv,
        paid_on=date(2026, 2, 10),
        amount=D(400),
        recorded_at=datetime(2026, 2, 10, 12, tzinfo=UTC),
    )
    penalties_accrue(datetime(2026, 3, 2, 2, 30, tzinfo=UTC))
    inv.refresh_from_db()
    return inv


@pytest.mark.django_db
def test_by_default_the_payment_day_still_bears_interest_as_erpnext_and_statute_count():
    policy = PenaltyPolicy.objects.create(name="Default", annual_rate=D("13.25"))
    assert policy.payment_day_bears_interest

    inv = thirty_days_with_400_paid_on_day_10()

    # ERPNext's Dunning: days = payment date - due date = 10 on the 400; 30 on the 600.
    assert inv.penalty == D("7.99")  # (400 x 10 + 600 x 30) x 13.25 % / 365 = 7.986


@pytest.mark.django_db
def test_a_policy_may_stop_interest_on_the_payment_day_itself():
    PenaltyPolicy.objects.create(
        name="Default", annual_rate=D("13.25"), payment_day_bears_interest=False
    )

    inv = thirty_days_with_400_paid_on_day_10()

    assert inv.penalty == D("7.84")  # (400 x 9 + 600 x 30) x 13.25 % / 365 = 7.841


@pytest.mark.django_db
def test_a_fully_paid_invoice_bears_interest_through_its_payment_day():
    PenaltyPolicy.objects.create(name="Default", annual_rate=D("36.5"))  # 0.10 a day on 100
    inv = InvoiceFactory(
        voucher_date=date(2026, 1, 1), payment_terms_days=30, amount=D(100), debt=D(0)
    )
    Payment.objects.create(
        invoice=inv,
        paid_on=date(2026, 2, 5),
        amount=D(100),
        recorded_at=datetime(2026, 2, 5, 12, tzinfo=UTC),
    )

    for day in range(10):
        penalties_accrue(datetime(2026, 2, 1, 2, 30, tzinfo=UTC) + timedelta(days=day))

    inv.refresh_from_db()
    assert (inv.penalty, inv.days_overdue) == (D("0.50"), 0)  # Feb 1 … Feb 5
