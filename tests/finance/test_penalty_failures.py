"""A unit of work commits whole, and one bad invoice never fails the run for everyone."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection

from crm import runner
from finance.jobs import penalties_accrue
from finance.models import Invoice, PenaltyAccrual, PenaltyPolicy
from tests.factories import InvoiceFactory

D = Decimal
AS_OF = datetime(2026, 2, 20, 2, 30, tzinfo=UTC)


def refuse_to_settle(invoice: Invoice) -> None:
    """Make the database refuse to settle `invoice` (as a numeric overflow or a broken row
    would), after its ledger row was written in the same unit of work."""
    when = f"NEW.id = {invoice.pk} AND NEW.penalty_through_day IS NOT NULL"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_test_invoice() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'invoice refused by the test'; END $$"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_test_invoice BEFORE UPDATE ON finance_invoice "
                f"FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION refuse_test_invoice()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER refuse_test_invoice BEFORE UPDATE ON finance_invoice "
                f"FOR EACH ROW WHEN {when} "
                "BEGIN SELECT RAISE(ABORT, 'invoice refused by the test'); END"
            )


def allow_again() -> None:
    on_table = " ON finance_invoice" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER refuse_test_invoice" + on_table)


@pytest.fixture
def invoices(db):
    PenaltyPolicy.objects.create(name="Default", annual_rate=D(10))
    return [
        InvoiceFactory(voucher_date=date(2026, 1, 1), amount=D(1000), debt=D(1000))
        for _ in range(5)
    ]


@pytest.mark.django_db
def test_a_unit_that_fails_midway_leaves_nothing_half_written(invoices):
    bad = invoices[2]
    refuse_to_settle(bad)

    penalties_accrue(AS_OF)

    bad.refresh_from_db()
    assert not PenaltyAccrual.objects.filter(invoice=bad).exists()  # written, then undone
    assert (bad.penalty, bad.penalty_through_day, bad.penalty_computed_at) == (0, None, None)


@pytest.mark.django_db
def test_one_bad_invoice_is_recorded_and_skipped_and_everyone_else_accrues(invoices):
    bad = invoices[2]
    refuse_to_settle(bad)

    run = runner.run_job("finance_penalties", AS_OF)

    assert run.status == run.Status.SUCCEEDED
    assert run.counts["failed"] == 1 and run.counts["invoices"] == 4
    for inv in invoices:
        inv.refresh_from_db()
    assert [inv.penalty for inv in invoices] == [D("5.48")] * 2 + [D(0)] + [D("5.48")] * 2
    assert "invoice refused by the test" in bad.penalty_error

    allow_again()
    counts = penalties_accrue(AS_OF)  # the next run heals it and clears the error

    bad.refresh_from_db()
    assert counts["failed"] == 0 and counts["invoices"] == 1
    assert (bad.penalty, bad.penalty_error) == (D("5.48"), "")


@pytest.mark.django_db
def test_a_fault_that_is_not_one_invoices_fails_the_run(invoices, monkeypatch):
    from finance import penalties

    broken = {**penalties.statements(), "settle": "UPDATE finance_invoice SET nonsense = 1"}
    monkeypatch.setattr(penalties, "statements", lambda: broken)

    run = runner.run_job("finance_penalties", AS_OF)

    assert run.status == run.Status.FAILED
    assert not PenaltyAccrual.objects.exists()
    assert not Invoice.objects.exclude(penalty_error="").exists()
