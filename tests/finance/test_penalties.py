"""finance_penalties: late penalties from payment terms and voucher date, day by day."""

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection
from django.forms import modelform_factory

from crm import runner
from finance.jobs import penalties_accrue
from finance.models import Invoice, PenaltyAccrual, PenaltyPolicy
from tests.factories import AccountFactory
from tests.finance.conftest import invoice, pay

D = Decimal


# The job's queries, whatever the number of invoices; folding the aging rollup is one statement
# on PostgreSQL, four in a transaction on SQLite.
JOB_QUERIES = 11 if connection.vendor == "postgresql" else 16


def run(day: date) -> dict:
    return penalties_accrue(datetime(day.year, day.month, day.day, 2, 30, tzinfo=UTC))


def expected(balances: list[Decimal], rate: Decimal) -> Decimal:
    """An independent oracle: each overdue day's balance x rate / 365, rounded once."""
    interest = sum(b * rate / D(36500) for b in balances)
    return D(interest).quantize(D("0.01"), rounding=ROUND_HALF_UP)


@pytest.mark.django_db
def test_nothing_is_owed_until_due_date_plus_grace_then_interest_runs_daily(policy):
    policy.grace_days = 5
    policy.save()
    inv = invoice()  # due 2026-01-31; penalty from 2026-02-06

    run(date(2026, 2, 5))
    inv.refresh_from_db()
    assert (inv.penalty, inv.days_overdue) == (D("0.00"), 5)

    run(date(2026, 2, 15))
    inv.refresh_from_db()
    assert inv.penalty == expected([D(1000)] * 10, D(10)) == D("2.74")
    assert inv.total_due == D("1002.74") and inv.days_overdue == 15


@pytest.mark.django_db
def test_payment_terms_move_the_due_date(policy):
    short, long = invoice(payment_terms_days=15), invoice(payment_terms_days=60)

    run(date(2026, 2, 20))

    short.refresh_from_db()
    long.refresh_from_db()
    assert short.due_date == date(2026, 1, 16) and short.penalty == expected([D(1000)] * 35, D(10))
    assert long.due_date == date(2026, 3, 2) and long.penalty == D(0)


@pytest.mark.django_db
def test_a_partial_payment_lowers_the_interest_from_the_day_after_it(policy):
    inv = invoice()
    pay(inv, date(2026, 2, 11), "400.00")  # Feb 1-11 on 1000 (its day bears interest), then 600

    run(date(2026, 2, 20))

    inv.refresh_from_db()
    assert inv.penalty == expected([D(1000)] * 11 + [D(600)] * 9, D(10)) == D("4.49")


@pytest.mark.django_db
def test_interest_already_accrued_stays_owed_after_the_principal_is_paid(policy):
    inv = invoice()
    run(date(2026, 2, 10))
    pay(inv, date(2026, 2, 13), "1000.00")  # paid between runs: Feb 11 to 13 still owed

    run(date(2026, 2, 20))
    run(date(2026, 3, 20))

    inv.refresh_from_db()
    assert inv.penalty == expected([D(1000)] * 13, D(10)) == D("3.56")
    assert (inv.debt, inv.total_due, inv.days_overdue) == (D(0), D("3.56"), 0)


@pytest.mark.django_db
def test_rounding_is_half_up_at_one_point(policy):
    policy.annual_rate = D("4.5625")  # 1000 x 4.5625 % / 365 = exactly 0.125 a day
    policy.save()
    inv = invoice()

    run(date(2026, 2, 1))

    inv.refresh_from_db()
    assert inv.penalty_accrued == D("0.125") and inv.penalty == D("0.13")


@pytest.mark.django_db
def test_a_leap_year_charges_366_days_of_rate_over_365(policy):
    leap = invoice(voucher_date=date(2027, 12, 1), payment_terms_days=30)  # due 2027-12-31
    plain = invoice(voucher_date=date(2026, 12, 1), payment_terms_days=30)  # due 2026-12-31

    run(date(2027, 12, 31))
    plain.refresh_from_db()
    assert plain.penalty == expected([D(1000)] * 365, D(10)) == D("100.00")  # all of 2027

    run(date(2028, 12, 31))
    leap.refresh_from_db()
    assert leap.penalty == expected([D(1000)] * 366, D(10)) == D("100.27")  # all of 2028


@pytest.mark.django_db
def test_the_cap_limits_the_total_by_amount_or_percent_whichever_is_lower(policy):
    capped = invoice()
    PenaltyPolicy.objects.create(
        name="Capped",
        account=capped.account,
        annual_rate=D(10),
        cap_amount=D("5.00"),
        cap_percent=D("0.30"),
    )

    run(date(2026, 2, 10))  # 2.74: under both caps
    capped.refresh_from_db()
    assert capped.penalty == D("2.74")
    run(date(2026, 6, 30))  # would be 41 without the cap; 0.30 % of 1000 = 3.00 < 5.00
    capped.refresh_from_db()
    assert capped.penalty == D("3.00")


@pytest.mark.django_db
def test_a_fixed_fee_for_every_full_period_overdue(policy):
    policy.annual_rate, policy.fixed_fee, policy.fee_period_days = D(0), D("15.00"), 30
    policy.save()
    inv = invoice()  # due Jan 31

    for day, fees in (
        (date(2026, 3, 1), "0.00"),
        (date(2026, 3, 2), "15.00"),
        (date(2026, 4, 2), "30.00"),
    ):
        run(day)
        inv.refresh_from_db()
        assert inv.penalty == D(fees), day


@pytest.mark.django_db
def test_re_running_a_day_changes_nothing(policy, django_assert_max_num_queries):
    inv = invoice()
    first = run(date(2026, 2, 20))

    with django_assert_max_num_queries(JOB_QUERIES):
        again = run(date(2026, 2, 20))

    inv.refresh_from_db()
    assert first["accrued"] == 1 and again["accrued"] == 0 and again["invoices"] == 0
    assert PenaltyAccrual.objects.count() == 1 and inv.penalty == D("5.48")


@pytest.mark.django_db
def test_a_missed_week_is_filled_once_with_the_same_figures_as_daily_runs(policy):
    policy.fixed_fee, policy.fee_period_days, policy.cap_amount = D("1.00"), 3, D("50")
    policy.save()
    inv = invoice()
    pay(inv, date(2026, 2, 4), "250.00")
    for offset in range(10):
        run(date(2026, 2, 1) + timedelta(days=offset))
    inv.refresh_from_db()
    daily = inv.penalty_accrued

    PenaltyAccrual.objects.all().delete()
    Invoice.objects.update(
        penalty_parts=0, penalty=0, penalty_through_day=None, penalty_computed_at=None
    )
    run(date(2026, 2, 3))
    run(date(2026, 2, 10))  # a week missed: one ledger row fills it

    inv.refresh_from_db()
    assert inv.penalty_accrued == daily  # exact: the ledger keeps whole parts
    fees = D("3.00")  # 10 days overdue: three full 3-day periods
    oracle = expected([D(1000)] * 4 + [D(750)] * 6, D(10)) + fees
    assert inv.penalty == daily.quantize(D("0.01"), rounding=ROUND_HALF_UP) == oracle == D("5.33")
    assert PenaltyAccrual.objects.filter(invoice=inv).count() == 2


@pytest.mark.django_db
def test_a_late_recorded_payment_corrects_the_days_after_it(policy):
    inv = invoice()
    run(date(2026, 2, 10))
    # On Feb 11 finance records a 500 payment the client made on Feb 5.
    pay(inv, date(2026, 2, 5), "500.00", recorded=date(2026, 2, 11))

    counts = run(date(2026, 2, 11))

    inv.refresh_from_db()
    assert counts["corrected"] == 1
    assert inv.penalty == expected([D(1000)] * 5 + [D(500)] * 6, D(10)) == D("2.19")


@pytest.mark.django_db
def test_unknown_currencies_and_impossible_dates_are_skipped_and_counted(policy):
    unknown = invoice(currency="ZZZ")  # the factory skips validation, as a bulk import would
    future = invoice(voucher_date=date(2027, 1, 1))
    ancient = invoice(voucher_date=date(1970, 1, 1))
    fine = invoice()

    counts = run(date(2026, 2, 20))

    assert counts["data_errors"] == 3 and counts["invoices"] == 1
    assert set(PenaltyAccrual.objects.values_list("invoice", flat=True)) == {fine.pk}
    for bad in (unknown, future, ancient):
        bad.refresh_from_db()
        assert bad.penalty == 0 and bad.penalty_computed_at is None


@pytest.mark.django_db
def test_an_account_policy_overrides_the_default(policy):
    special = invoice()
    PenaltyPolicy.objects.create(name="Friendly", account=special.account, annual_rate=D(0))
    ordinary = invoice()

    run(date(2026, 2, 20))

    special.refresh_from_db()
    ordinary.refresh_from_db()
    assert (special.penalty, ordinary.penalty) == (D(0), D("5.48"))


@pytest.mark.django_db
def test_without_any_policy_nothing_accrues():
    inv = invoice()

    run(date(2026, 2, 20))

    inv.refresh_from_db()
    assert inv.penalty == 0 and not PenaltyAccrual.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("invoices", [1, 25])
def test_the_job_costs_the_same_queries_however_many_invoices(
    policy, invoices, django_assert_num_queries
):
    for _ in range(invoices):
        invoice()
    with django_assert_num_queries(JOB_QUERIES):  # the same for 1 invoice or 25
        run(date(2026, 2, 20))
    assert PenaltyAccrual.objects.count() == invoices


@pytest.mark.django_db
def test_a_dry_run_writes_nothing(policy):
    inv = invoice()

    result = runner.run_job("finance_penalties", datetime(2026, 2, 20, 3, tzinfo=UTC), dry_run=True)

    inv.refresh_from_db()
    assert result.counts["accrued"] == 1
    assert inv.penalty == 0 and not PenaltyAccrual.objects.exists()


PolicyForm = modelform_factory(PenaltyPolicy, fields="__all__")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("annual_rate", "150", "The annual rate cannot be more than 100 %."),
        ("annual_rate", "-1", "The annual rate cannot be negative."),
        ("fixed_fee", "-10", "The fixed fee cannot be negative."),
        ("fee_period_days", "0", "A fee period lasts at least one day."),
        ("cap_percent", "101", "The cap cannot be more than 100 %."),
        ("cap_amount", "-1", "The cap cannot be negative."),
    ],
)
def test_bad_policy_input_is_refused_with_a_clear_message(field, value, message):
    data = {
        "name": "P",
        "grace_days": 0,
        "annual_rate": "5",
        "fixed_fee": "0",
        "fee_period_days": 30,
        field: value,
    }

    form = PolicyForm(data)

    assert not form.is_valid()
    assert message in form.errors[field]
    assert not PenaltyPolicy.objects.exists()


@pytest.mark.django_db
def test_a_second_default_policy_is_refused(policy):
    form = PolicyForm(
        {
            "name": "Another",
            "grace_days": 0,
            "annual_rate": "5",
            "fixed_fee": "0",
            "fee_period_days": 30,
        }
    )

    assert not form.is_valid()
    assert "There is already a policy for this account" in str(form.errors)
    assert AccountFactory()  # an account policy would be fine
