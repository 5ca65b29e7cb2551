"""Exact accrual: an invoice's penalty is the same to the cent however its days are split
into runs (daily, after a missed week, once at the end), and equals an exact oracle."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from django.db import transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from finance.jobs import penalties_accrue
from finance.models import Invoice, Payment, PenaltyAccrual, PenaltyPolicy
from tests.factories import InvoiceFactory

D = Decimal
CENT = D("0.01")
VOUCHER = date(2026, 1, 1)


def run(day: date) -> dict:
    return penalties_accrue(datetime(day.year, day.month, day.day, 2, 30, tzinfo=UTC))


@pytest.mark.django_db
def test_365_daily_runs_give_the_cents_of_one_run():
    """£1,002.00 at 13.25 % for 365 days is exactly £132.765: 132.77, however it is run."""
    PenaltyPolicy.objects.create(name="Default", annual_rate=D("13.25"))
    terms = {"voucher_date": VOUCHER, "payment_terms_days": 30}  # due Jan 31
    daily = InvoiceFactory(amount=D("1002.00"), debt=D("1002.00"), **terms)
    for offset in range(365):  # 2026-02-01 … 2027-01-31
        run(date(2026, 2, 1) + timedelta(days=offset))
    once = InvoiceFactory(amount=D("1002.00"), debt=D("1002.00"), **terms)
    run(date(2027, 1, 31))

    daily.refresh_from_db()
    once.refresh_from_db()
    assert PenaltyAccrual.objects.filter(invoice=daily).count() == 365
    assert PenaltyAccrual.objects.filter(invoice=once).count() == 1
    assert daily.penalty_accrued == once.penalty_accrued == D("132.765")
    assert daily.penalty == once.penalty == D("132.77")


@dataclass(frozen=True)
class Paid:
    on: date
    cents: int
    recorded: date  # entered on this day, after that day's run


@dataclass(frozen=True)
class Scenario:
    cents: int
    terms: int
    grace: int
    rate: Decimal
    fee_cents: int
    fee_period: int
    cap_cents: int | None
    cap_hundredths: int | None
    payment_day_bears_interest: bool
    payments: tuple[Paid, ...]
    final: date
    runs: tuple[date, ...]  # the split: run days before `final`, then `final`


@st.composite
def scenarios(draw) -> Scenario:
    cents = draw(st.integers(1, 10_000_000))  # up to £100,000.00
    terms, grace = draw(st.integers(0, 60)), draw(st.integers(0, 10))
    final = VOUCHER + timedelta(days=terms + grace + draw(st.integers(1, 200)))
    days = (final - VOUCHER).days
    payments, left = [], cents
    for _ in range(draw(st.integers(0, 3))):
        if left == 0:
            break
        part = draw(st.one_of(st.just(left), st.integers(1, left)))  # often pays it all
        left -= part
        on = VOUCHER + timedelta(days=draw(st.integers(0, days)))
        lag = draw(st.integers(0, 15))
        payments.append(Paid(on=on, cents=part, recorded=on + timedelta(days=lag)))
    earlier = draw(st.sets(st.integers(0, days - 1), max_size=8))
    return Scenario(
        cents=cents,
        terms=terms,
        grace=grace,
        rate=D(draw(st.integers(0, 1_000_000))) / 10_000,  # 0 … 100 %, 4 decimals
        fee_cents=draw(st.sampled_from([0, 0, 1, 1500, draw(st.integers(0, 100_000))])),
        fee_period=draw(st.integers(1, 40)),
        cap_cents=draw(st.none() | st.integers(0, 2_000_000)),
        cap_hundredths=draw(st.none() | st.integers(0, 10_000)),
        payment_day_bears_interest=draw(st.booleans()),
        payments=tuple(payments),
        final=final,
        runs=tuple(VOUCHER + timedelta(days=d) for d in sorted(earlier)) + (final,),
    )


def penalty_after(s: Scenario, runs: tuple[date, ...]) -> tuple[Decimal, Decimal]:
    """Run the job on each of `runs`, entering each payment before the first run after the day
    it was recorded; return (penalty, exact ledger total). Leaves nothing behind."""
    with transaction.atomic():
        PenaltyPolicy.objects.create(
            name="Default",
            grace_days=s.grace,
            annual_rate=s.rate,
            fixed_fee=D(s.fee_cents) / 100,
            fee_period_days=s.fee_period,
            cap_amount=None if s.cap_cents is None else D(s.cap_cents) / 100,
            cap_percent=None if s.cap_hundredths is None else D(s.cap_hundredths) / 100,
            payment_day_bears_interest=s.payment_day_bears_interest,
        )
        amount = D(s.cents) / 100
        inv = InvoiceFactory(
            voucher_date=VOUCHER, payment_terms_days=s.terms, amount=amount, debt=amount
        )
        waiting = list(s.payments)
        for day in runs:
            for p in [p for p in waiting if p.recorded < day]:
                waiting.remove(p)
                Payment.objects.create(
                    invoice=inv,
                    paid_on=p.on,
                    amount=D(p.cents) / 100,
                    recorded_at=datetime.combine(p.recorded, datetime.min.time(), tzinfo=UTC)
                    + timedelta(hours=12),
                )
                Invoice.objects.filter(pk=inv.pk).update(debt=inv.debt - D(p.cents) / 100)
                inv.refresh_from_db()
            run(day)
        inv.refresh_from_db()
        transaction.set_rollback(True)
    return inv.penalty, inv.penalty_accrued


def oracle(s: Scenario) -> Decimal:
    """Independent of the SQL: sum each overdue day's balance exactly, round once."""
    paid = [p for p in s.payments if p.recorded < s.final]
    anchor = VOUCHER + timedelta(days=s.terms + s.grace)  # the last day without penalty

    def balance(day: date) -> int:  # cents owed on `day`
        gone = (p for p in paid if (p.on < day if s.payment_day_bears_interest else p.on <= day))
        return s.cents - sum(p.cents for p in gone)

    owed = [anchor + timedelta(days=n) for n in range(1, (s.final - anchor).days + 1)]
    owed = [day for day in owed if balance(day) > 0]
    interest = sum((Fraction(balance(d)) / 100 * Fraction(s.rate) / 36500 for d in owed), start=0)
    fees = Fraction(s.fee_cents, 100) * ((owed[-1] - anchor).days // s.fee_period if owed else 0)
    caps = [Fraction(s.cap_cents, 100)] if s.cap_cents is not None else []
    if s.cap_hundredths is not None:
        caps.append(Fraction(s.cents * s.cap_hundredths, 1_000_000))
    total = min([interest + fees, *caps])
    return (D(total.numerator) / D(total.denominator)).quantize(CENT, rounding=ROUND_HALF_UP)


@pytest.mark.django_db
@settings(max_examples=80, deadline=None, database=None)
@given(scenarios())
def test_every_split_of_the_days_into_runs_gives_the_cents_of_one_run(s):
    split, split_exact = penalty_after(s, s.runs)
    once, once_exact = penalty_after(s, (s.final,))

    assert split_exact == once_exact
    assert split == once == oracle(s)
