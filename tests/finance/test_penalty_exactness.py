"""Exact accrual: an invoice's penalty is the same to the minor unit of its currency however its
days are split into runs (daily, after a missed week, once at the end), with overpayments and
refunds, and equals an exact oracle."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from django.db import transaction
from hypothesis import example, given, settings
from hypothesis import strategies as st

from finance.jobs import penalties_accrue
from finance.models import Invoice, Payment, PenaltyAccrual, PenaltyPolicy
from tests.factories import InvoiceFactory

D = Decimal
VOUCHER = date(2026, 1, 1)
# A currency of each number of decimals: yen, cents, fils, and CLF's ten-thousandths.
CURRENCIES = {"JPY": 0, "EUR": 2, "KWD": 3, "CLF": 4}


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
    minor: int  # negative: a refund
    recorded: date  # entered on this day, after that day's run


@dataclass(frozen=True)
class Scenario:
    currency: str
    minor: int  # the amount, in minor units of the currency
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
def payment(draw, minor: int, left: int) -> int:
    """A payment of some or all of what is `left`, more than that (an overpayment), or a refund
    of some of what was paid; 0: none."""
    paid = minor - left
    kind = draw(st.sampled_from(["part", "all", "over", "refund"]))
    if kind == "refund":
        return -draw(st.integers(1, paid)) if paid > 0 else 0
    if kind == "over":
        return max(left, 0) + draw(st.integers(1, minor))
    if left <= 0:
        return 0
    return left if kind == "all" else draw(st.integers(1, left))


@st.composite
def scenarios(draw) -> Scenario:
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    minor = draw(st.integers(1, 10_000_000))  # up to 100,000.00 EUR, 10,000,000 JPY
    terms, grace = draw(st.integers(0, 60)), draw(st.integers(0, 10))
    final = VOUCHER + timedelta(days=terms + grace + draw(st.integers(1, 200)))
    days = (final - VOUCHER).days
    payments, left = [], minor
    for day in sorted(draw(st.lists(st.integers(0, days), max_size=4))):
        part = draw(payment(minor, left))
        if part == 0:
            continue
        left -= part
        on = VOUCHER + timedelta(days=day)
        lag = draw(st.integers(0, 15))
        payments.append(Paid(on=on, minor=part, recorded=on + timedelta(days=lag)))
    earlier = draw(st.sets(st.integers(0, days - 1), max_size=8))
    return Scenario(
        currency=currency,
        minor=minor,
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
        amount = D(s.minor).scaleb(-CURRENCIES[s.currency])
        inv = InvoiceFactory(
            voucher_date=VOUCHER,
            payment_terms_days=s.terms,
            currency=s.currency,
            amount=amount,
            debt=amount,
        )
        waiting = list(s.payments)
        for day in runs:
            for p in [p for p in waiting if p.recorded < day]:
                waiting.remove(p)
                paid = D(p.minor).scaleb(-CURRENCIES[s.currency])
                Payment.objects.create(
                    invoice=inv,
                    paid_on=p.on,
                    amount=paid,
                    recorded_at=datetime.combine(p.recorded, datetime.min.time(), tzinfo=UTC)
                    + timedelta(hours=12),
                )
                Invoice.objects.filter(pk=inv.pk).update(debt=inv.debt - paid)
                inv.refresh_from_db()
            run(day)
        inv.refresh_from_db()
        transaction.set_rollback(True)
    return inv.penalty, inv.penalty_accrued


def oracle(s: Scenario) -> Decimal:
    """Independent of the SQL: sum each overdue day's balance bearing interest (what is owed,
    between nothing and the invoice amount) exactly, round once to the minor unit."""
    paid = [p for p in s.payments if p.recorded < s.final]
    anchor = VOUCHER + timedelta(days=s.terms + s.grace)  # the last day without penalty
    unit = 10 ** CURRENCIES[s.currency]

    def bearing(day: date) -> int:  # minor units bearing interest on `day`
        gone = (p for p in paid if (p.on < day if s.payment_day_bears_interest else p.on <= day))
        return max(0, min(s.minor, s.minor - sum(p.minor for p in gone)))

    owed = [anchor + timedelta(days=n) for n in range(1, (s.final - anchor).days + 1)]
    owed = [day for day in owed if bearing(day) > 0]
    interest = sum(
        (Fraction(bearing(d), unit) * Fraction(s.rate) / 36500 for d in owed), start=Fraction(0)
    )
    # A fee for each full period overdue, on the day it completes, if something is owed then.
    periods = sum(1 for day in owed if (day - anchor).days % s.fee_period == 0)
    fees = Fraction(s.fee_cents, 100) * periods
    caps = [Fraction(s.cap_cents, 100)] if s.cap_cents is not None else []
    if s.cap_hundredths is not None:
        caps.append(Fraction(s.minor * s.cap_hundredths, unit * 10_000))
    total = min([interest + fees, *caps])
    quantum = D(1).scaleb(-CURRENCIES[s.currency])
    return (D(total.numerator) / D(total.denominator)).quantize(quantum, rounding=ROUND_HALF_UP)


def tiny(payments: list[tuple[int, int]], runs: list[int], fee_cents: int, rate: str) -> Scenario:
    """0.0001 CLF due on the voucher day; payments (day, minor units) entered on their day."""
    day = [VOUCHER + timedelta(days=n) for n in range(8)]
    return Scenario(
        currency="CLF",
        minor=1,
        terms=0,
        grace=0,
        rate=D(rate),
        fee_cents=fee_cents,
        fee_period=1,
        cap_cents=None,
        cap_hundredths=None,
        payment_day_bears_interest=False,
        payments=tuple(Paid(on=day[n], minor=m, recorded=day[n]) for n, m in payments),
        final=day[runs[-1]],
        runs=tuple(day[n] for n in runs),
    )


@pytest.mark.django_db
@settings(max_examples=120, deadline=None, database=None)
@given(scenarios())
# Paid, then refunded: no fee for the day in between, whether a run saw it or not.
@example(tiny([(0, 1), (2, -1)], runs=[1, 3], fee_cents=1, rate="0"))
# Paid, refunded and paid again, all after the run that closed the invoice: the next run looks.
@example(tiny([(0, 1), (1, -1), (3, 1)], runs=[1, 4], fee_cents=0, rate="0.0001"))
def test_every_split_of_the_days_into_runs_gives_the_cents_of_one_run(s):
    split, split_exact = penalty_after(s, s.runs)
    once, once_exact = penalty_after(s, (s.final,))

    assert split_exact == once_exact
    assert split == once == oracle(s)
