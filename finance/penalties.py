"""Late penalties, computed by the database over ranges of invoices.

Rules (see PenaltyPolicy):
- An invoice is due on voucher date + payment terms. Penalty starts the day after due date +
  grace days, and counts only while a debt is outstanding.
- Interest is simple and daily: each day's outstanding debt x annual rate / 365 (so a leap year
  charges 366/365 of the rate). The debt on a day is today's debt plus every payment made after
  that day; by default a payment still bears interest on its own day (days = payment date - due
  date, as ERPNext and statutory practice count), or, if the policy says so, not. Interest
  already accrued stays owed after the principal is paid.
- A fixed fee is charged for every full fee period overdue.
- An optional cap (an amount, a % of the invoice, or the lower of both) limits the total.
- Money is exact: every amount is turned into whole cents, rates into whole 0.0001 %, and the
  ledger keeps whole parts (1/36,500,000,000 of the currency unit: one cent-day at 0.0001 % a
  year), so a sum over any split of the days is the same integer. The one rounding point is
  Invoice.penalty: the exact total, half-up to the cent, by integer division. On SQLite the
  parts are 64-bit integers (exact up to a penalty of about 250 million).
- Invoices with a negative debt or an impossible voucher date (after as_of, or before 2000)
  are skipped and counted as data errors.

Work is found from the invoice_penalty_due index: invoices whose penalty is open (or that owe
something) and whose penalty_through_day is before today. An invoice that is paid off and
accrued to its last day leaves it; a debt brings it back.
"""

from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from finance.models import EPOCH, PARTS_PER_UNIT, Invoice

OLDEST_VOUCHER = date(2000, 1, 1)
PARTS_PER_CENT = PARTS_PER_UNIT // 100

# Vendor spellings of what SQL does not share: LEAST/GREATEST, an exact whole number from a
# decimal column (SQLite holds "13.25" as a float, so it is rounded back to an integer), and
# integer division.
_SPELLING = {
    "postgresql": {
        "least": "LEAST",
        "greatest": "GREATEST",
        "whole": "ROUND({})",
        "quotient": "div({}, {})",
    },
    "sqlite": {
        "least": "MIN",
        "greatest": "MAX",
        "whole": "CAST(ROUND({}) AS INTEGER)",
        "quotient": "(({}) / ({}))",
    },
}

VALID = """i.debt >= 0 AND i.voucher_date BETWEEN %(oldest)s AND %(today)s"""

# Invoices with work left in the range: the predicate and columns of invoice_penalty_due.
DUE = """(i.penalty_open OR NOT (i.debt = 0))
      AND (i.penalty_through_day < %(today_day)s OR i.penalty_through_day IS NULL)
      AND i.id BETWEEN %(lo)s AND %(hi)s"""

# Each policy field of the invoice's account policy, or of the default policy.
POLICY = """JOIN finance_penaltypolicy p ON p.id = COALESCE(
        (SELECT ap.id FROM finance_penaltypolicy ap WHERE ap.account_id = i.account_id),
        (SELECT dp.id FROM finance_penaltypolicy dp WHERE dp.account_id IS NULL))"""

# Payments recorded after the invoice's penalty was computed for their day: the days from
# their payment day on were accrued on a debt that was wrong, and are done again. Found from
# the payment_recorded index: nothing recorded since %(since)s can be late.
LATE = """
    SELECT pay.invoice_id, MIN(pay.paid_day) AS paid_day
    FROM finance_payment pay JOIN finance_invoice i ON i.id = pay.invoice_id
    WHERE pay.recorded_at > %(since)s AND pay.invoice_id BETWEEN %(lo)s AND %(hi)s
      AND pay.recorded_at > i.penalty_computed_at AND pay.paid_day <= i.penalty_through_day
    GROUP BY pay.invoice_id"""

CORRECT = """
DELETE FROM finance_penaltyaccrual WHERE id IN (
    SELECT a.id FROM ({late}) late
    JOIN finance_penaltyaccrual a ON a.invoice_id = late.invoice_id AND a.end_day >= late.paid_day)
"""

RESET = """
UPDATE finance_invoice SET
    penalty_through_day = (SELECT MAX(a.end_day) FROM finance_penaltyaccrual a
                           WHERE a.invoice_id = finance_invoice.id),
    penalty_parts = COALESCE((SELECT SUM(a.amount_parts) FROM finance_penaltyaccrual a
                              WHERE a.invoice_id = finance_invoice.id), 0),
    penalty_open = TRUE
WHERE id IN (SELECT late.invoice_id FROM ({late}) late)
"""

# One ledger row per invoice with days to accrue. In whole numbers: cents of debt and payments,
# the rate in 0.0001 %; a paid amount bears interest through its payment day minus one, plus
# one when the payment day bears interest (w.bears).
ACCRUE = """
INSERT INTO finance_penaltyaccrual (invoice_id, start_day, end_day, days, balance_days,
                                    annual_rate, interest_parts, fees, amount_parts, run_day)
SELECT id, start_day, end_day, end_day - start_day + 1, basis / 100.0, annual_rate,
       basis * rate, fixed_fee * periods,
       CASE WHEN cap IS NULL THEN basis * rate + fee_cents * periods * {per_cent}
            ELSE {least}(basis * rate + fee_cents * periods * {per_cent},
                         {greatest}(cap - accrued, 0))
       END,
       %(today_day)s
FROM (
    SELECT w.*,
           (w.end_day - w.start_day + 1) * w.debt + COALESCE((
               SELECT SUM({pay_cents}
                          * ({least}(w.end_day, pay.paid_day - 1 + w.bears) - w.start_day + 1))
               FROM finance_payment pay
               WHERE pay.invoice_id = w.id AND pay.paid_day - 1 + w.bears >= w.start_day), 0)
           AS basis,
           (w.end_day - w.anchor) / w.fee_period_days
               - (w.start_day - 1 - w.anchor) / w.fee_period_days AS periods
    FROM (
        SELECT i.id, {debt_cents} AS debt, i.penalty_parts AS accrued, p.annual_rate,
               {rate} AS rate, p.fixed_fee, {fee_cents} AS fee_cents, p.fee_period_days,
               i.due_day + p.grace_days AS anchor, {bears} AS bears,
               {greatest}(COALESCE(i.penalty_through_day + 1, 0),
                          i.due_day + p.grace_days + 1) AS start_day,
               CASE WHEN i.debt > 0 THEN %(today_day)s
                    ELSE {least}(%(today_day)s, (SELECT MAX(pay.paid_day) - 1 + {bears}
                                 FROM finance_payment pay WHERE pay.invoice_id = i.id))
               END AS end_day,
               CASE WHEN p.cap_amount IS NULL AND p.cap_percent IS NULL THEN NULL
                    WHEN p.cap_percent IS NULL THEN {cap_amount}
                    WHEN p.cap_amount IS NULL THEN {cap_percent}
                    ELSE {least}({cap_amount}, {cap_percent})
               END AS cap
        FROM finance_invoice i {policy}
        WHERE {due} AND {valid} AND i.due_day + p.grace_days < %(today_day)s
    ) w
    WHERE w.end_day >= w.start_day
) v
WHERE true  -- SQLite reads a bare "ON" after a subquery as a join condition
ON CONFLICT DO NOTHING
"""

# Every invoice with work left is brought to today: its exact total, rounded half-up to the
# cent by integer division (the one rounding point), and whether it stays open.
SETTLE = """
UPDATE finance_invoice SET
    penalty_parts = n.parts,
    penalty = {quotient} / 100.0,
    penalty_through_day = %(today_day)s,
    penalty_open = (n.debt > 0 OR EXISTS (SELECT 1 FROM finance_payment pay
                                          WHERE pay.invoice_id = n.id
                                            AND pay.paid_day >= %(today_day)s)),
    days_overdue = CASE WHEN n.debt > 0 AND n.due_day < %(today_day)s
                        THEN %(today_day)s - n.due_day ELSE 0 END,
    penalty_computed_at = %(as_of)s,
    penalty_error = ''
FROM (
    SELECT i.id, i.debt, i.due_day, i.penalty_parts + COALESCE((
               SELECT SUM(a.amount_parts) FROM finance_penaltyaccrual a
               WHERE a.invoice_id = i.id AND a.end_day > COALESCE(i.penalty_through_day, -1)
           ), 0) AS parts
    FROM finance_invoice i
    WHERE {due} AND {valid}
) n
WHERE finance_invoice.id = n.id
  -- Re-checked on the row itself, so a concurrent run that settled it first wins alone.
  AND COALESCE(finance_invoice.penalty_through_day, -1) < %(today_day)s
"""

DATA_ERRORS = """
SELECT COUNT(*) FROM finance_invoice i
WHERE {due} AND NOT ({valid})
"""


def statements() -> dict[str, str]:
    spelled = _SPELLING[connection.vendor]
    least, greatest = spelled["least"], spelled["greatest"]

    def whole(expression: str) -> str:
        return spelled["whole"].format(expression)

    spell = {
        "least": least,
        "greatest": greatest,
        "policy": POLICY,
        "valid": VALID,
        "due": DUE,
        "late": LATE,
        "bears": "CASE WHEN p.payment_day_bears_interest THEN 1 ELSE 0 END",
        "per_cent": PARTS_PER_CENT,
        "debt_cents": whole("i.debt * 100"),
        "pay_cents": whole("pay.amount * 100"),
        "rate": whole("p.annual_rate * 10000"),
        "fee_cents": whole("p.fixed_fee * 100"),
        "cap_amount": f"{whole('p.cap_amount * 100')} * {PARTS_PER_CENT}",
        # amount (cents) x cap (0.01 %) / 1,000,000 of a unit = x 36,500 parts
        "cap_percent": f"{whole('i.amount * 100')} * {whole('p.cap_percent * 100')} * 36500",
        "quotient": spelled["quotient"].format(
            f"n.parts + {PARTS_PER_CENT // 2}", str(PARTS_PER_CENT)
        ),
    }
    return {
        "correct": CORRECT.format(**spell),
        "reset": RESET.format(**spell),
        "accrue": ACCRUE.format(**spell),
        "settle": SETTLE.format(**spell),
        "data_errors": DATA_ERRORS.format(**spell),
    }


def day_number(day: date) -> int:
    return (day - EPOCH).days


def corrections_since(today: date) -> datetime:
    """No payment recorded before this can be late: every invoice still open was computed on
    or after the day it was last accrued for, and every invoice settled today after today's
    midnight."""
    # ORDER BY … LIMIT 1 reads one entry of invoice_penalty_due, whatever the statistics say.
    oldest = (
        Invoice.objects.filter(Q(penalty_open=True) | ~Q(debt=0), penalty_through_day__isnull=False)
        .order_by("penalty_through_day")
        .values_list("penalty_through_day", flat=True)
        .first()
    )
    day = today if oldest is None else min(today, EPOCH + timedelta(days=oldest))
    return timezone.make_aware(datetime.combine(day, time.min))


def accrue_range(lo: int, hi: int, today: date, as_of: datetime, since: datetime) -> dict[str, int]:
    """Bring every invoice with lo <= id <= hi up to date for `today`. Call inside a
    transaction: the range is done wholly or not at all."""
    adapt = connection.ops.adapt_datetimefield_value
    params: dict[str, Any] = {
        "lo": lo,
        "hi": hi,
        "today": today,
        "today_day": day_number(today),
        "as_of": adapt(as_of),
        "since": adapt(since),
        "oldest": OLDEST_VOUCHER,
    }
    sql = statements()
    with connection.cursor() as cursor:
        cursor.execute(sql["correct"], params)
        cursor.execute(sql["reset"], params)
        corrected = cursor.rowcount
        cursor.execute(sql["accrue"], params)
        accrued = cursor.rowcount
        cursor.execute(sql["settle"], params)
        settled = cursor.rowcount
        cursor.execute(sql["data_errors"], params)
        (errors,) = cursor.fetchone()
    return {"invoices": settled, "accrued": accrued, "corrected": corrected, "data_errors": errors}
