"""A credit note (a negative invoice) and an overpaid invoice are valid documents: they bear no
interest, are no data error for the penalty job and no integrity problem for the bug report."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from finance.jobs import penalties_accrue
from finance.models import Invoice, Payment, PenaltyAccrual, PenaltyPolicy
from monitoring.findings import day_before
from monitoring.integrity import bad_invoices
from tests.factories import InvoiceFactory

D = Decimal


def run(day: date) -> dict:
    return penalties_accrue(datetime(day.year, day.month, day.day, 2, 30, tzinfo=UTC))


@pytest.fixture
def credit_note(db):
    PenaltyPolicy.objects.create(name="Default", annual_rate=D("13.25"), fixed_fee=D(15))
    return InvoiceFactory(
        number="CN-1", voucher_date=date(2026, 1, 1), amount=D("-250.00"), debt=D("-250.00")
    )


@pytest.mark.django_db
def test_a_credit_note_accrues_nothing_and_is_no_data_error_on_any_run(credit_note):
    counts = [run(date(2026, 2, 1) + timedelta(days=n)) for n in range(60)]

    credit_note.refresh_from_db()
    assert [c["data_errors"] for c in counts] == [0] * 60
    assert (credit_note.penalty, credit_note.days_overdue) == (D(0), 0)
    assert not PenaltyAccrual.objects.exists()
    # Settled once, then out of the job's work: no run looks at it again.
    assert [c["invoices"] for c in counts] == [1] + [0] * 59
    assert not credit_note.penalty_open


@pytest.mark.django_db
def test_a_credit_note_paid_out_stays_without_interest(credit_note):
    Payment.objects.create(
        invoice=credit_note,
        paid_on=date(2026, 2, 15),
        amount=D("-250.00"),  # the credit paid back to the client
        recorded_at=datetime(2026, 2, 15, 12, tzinfo=UTC),
    )
    Invoice.objects.filter(pk=credit_note.pk).update(debt=0)

    counts = run(date(2026, 3, 31))

    credit_note.refresh_from_db()
    assert counts["data_errors"] == 0 and credit_note.penalty == 0
    assert not PenaltyAccrual.objects.exists()


@pytest.mark.django_db
def test_credit_notes_and_overpaid_invoices_are_not_integrity_problems(credit_note):
    InvoiceFactory(number="OVER-1", amount=D(1000), debt=D("-200.00"))
    future = InvoiceFactory(number="FUT-1", voucher_date=date(2027, 3, 9))

    section = bad_invoices(day_before(datetime(2027, 3, 2, 7, tzinfo=UTC)))

    assert section.total == 1
    assert [f.label for f in section.findings] == [future.number]
