"""Late penalties, computed by the database over ranges of invoices.

Rules (see PenaltyPolicy):
- An invoice is due on voucher date + payment terms. Penalty starts the day after due date +
  grace days, and counts only while something is owed.
- Interest is simple and daily: each day's balance x annual rate / 365 (so a leap year charges
  366/365 of the rate). The balance on a day is today's debt plus every payment made after that
  day (a refund is a negative payment); by default a payment still bears interest on its own day
  (days = payment date - due date, as ERPNext and statutory practice count), or, if the policy
  says so, not. The balance bears interest only between zero and the invoice amount: an
  overpayment is a credit (a negative debt) that bears none, a credit note (a negative amount)
  never bears any, and a debt recorded as 0 after an overpayment cannot make the payment bear
  more than was owed. Interest already accrued stays owed after the principal is paid.
- A fixed fee is charged for every full fee period overdue: on the day a period completes, if
  something is owed that day.
- An optional cap (an amount, a % of the invoice, or the lower of both) limits the total.
- Money is exact, in the invoice's currency: every amount is turned into whole minor units
  (JPY yen, EUR cents, KWD fils), rates into whole 0.0001 %, and the ledger keeps whole parts
  (1/365,000,000 of the minor unit: one minor-unit-day at 0.0001 % a year), so a sum over any
  split of the days is the same integer. The one rounding point is Invoice.penalty: the exact
  total, half-up to the minor unit, by integer division. On SQLite the parts are 64-bit
  integers (exact up to a penalty of about 25 billion minor units).
- Invoices with an impossible voucher date (after as_of, or before 2000) or a currency that is
  not ISO 4217 are skipped and counted as data errors.

Work is found from the invoice_penalty_due index: invoices whose penalty is open (or that owe
something) and whose penalty_through_day is before today. An invoice that is paid off (or a
credit) and accrued to its last day leaves it; a debt brings it back.
"""

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from finance.currencies import CURRENCIES, MINOR_UNITS
from finance.models import EPOCH, PARTS_PER_MINOR, Invoice

OLDEST_VOUCHER = date(2000, 1, 1)
# A policy's fee or cap amount has 2 decimals; in parts: its hundredths x this x the minor units
# in one unit of the invoice's currency (exact for any currency, yen included).
PARTS_PER_HUNDREDTH = PARTS_PER_MINOR // 100

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


def _codes(codes: Iterable[str]) -> str:
    """Codes of our own table as SQL literals (three capital letters: nothing to escape)."""
    listed = sorted(codes)
    if not all(len(c) == 3 and c.isalpha() and c.isupper() for c in listed):
        raise ValueError(f"not currency codes: {listed}")
    return ", ".join(f"'{code}'" for code in listed)


# Minor units in one unit of the invoice's currency: JPY 1, EUR 100, KWD 1000.
SCALE = (
    "CASE "
    + " ".join(
        f"WHEN i.currency IN ({_codes(c for c, u in MINOR_UNITS.items() if u == places)}) "
        f"THEN {10**places}"
        for places in sorted(set(MINOR_UNITS.values()))
    )
    + " ELSE 100 END"
)

VALID = f"""i.voucher_date BETWEEN %(oldest)s AND %(today)s
      AND i.currency IN ({_codes(CURRENCIES)})"""

# Invoices with work left in the range: the predicate and columns of invoice_penalty_due.
DUE = """(i.penalty_open OR i.debt > 0)
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

# With no debt left, the last day something was owed: the last day a payment still counted
# for (its payment day minus one, plus one when that day bears interest) on which the balance,
# that payment and every later one added back to the debt, was positive. None (-1: no day) for
# a credit note or without payments; LEAST on PostgreSQL would skip a NULL.
LAST_OWED = """(
    SELECT MAX(pay.paid_day - 1 + {bears}) FROM finance_payment pay
    WHERE pay.invoice_id = i.id AND i.amount > 0
      AND {debt_minor} + (SELECT SUM({later_minor}) FROM finance_payment later
                          WHERE later.invoice_id = i.id AND later.paid_day >= pay.paid_day) > 0)"""

# One ledger row per invoice with days to accrue. In whole numbers: minor units of debt and
# payments, the rate in 0.0001 %. The balance is a step that moves after each payment's last
# day (its payment day minus one, plus one when the payment day bears interest, w.bears), so the
# days split into segments at those days; each segment's balance bears interest between zero
# (a credit) and the invoice amount (what was owed). Several payments on one day give
# zero-length segments. A fee period is charged on the day it completes if something is owed
# that day: a count per day, so the same however the days are split into runs, and no fee
# for periods a refund ends after a time in credit. (WITH comes after INSERT: Python's sqlite3
# counts the rows of a statement only when it starts with INSERT.)
ACCRUE = """
INSERT INTO finance_penaltyaccrual (invoice_id, start_day, end_day, days, balance_days,
                                    annual_rate, interest_parts, fees, amount_parts, run_day)
WITH w AS (
    SELECT i.id, {debt_minor} AS debt, {amount_minor} AS owed, i.penalty_parts AS accrued,
           p.annual_rate, {rate} AS rate, p.fixed_fee, {fee_parts} AS fee_parts,
           p.fee_period_days, i.due_day + p.grace_days AS anchor, {bears} AS bears,
           {scale} AS scale,
           {greatest}(COALESCE(i.penalty_through_day + 1, 0),
                      i.due_day + p.grace_days + 1) AS start_day,
           CASE WHEN i.debt > 0 THEN %(today_day)s
                ELSE {least}(%(today_day)s, COALESCE({last_owed}, -1))
           END AS end_day,
           CASE WHEN p.cap_amount IS NULL AND p.cap_percent IS NULL THEN NULL
                WHEN p.cap_percent IS NULL THEN {cap_amount}
                WHEN p.cap_amount IS NULL THEN {cap_percent}
                ELSE {least}({cap_amount}, {cap_percent})
           END AS cap
    FROM finance_invoice i {policy}
    WHERE {due} AND {valid} AND i.due_day + p.grace_days < %(today_day)s
),
ends AS (
    SELECT w.*, w.end_day AS segment_end, 1 AS is_last FROM w WHERE w.end_day >= w.start_day
    UNION ALL
    SELECT w.*, pay.paid_day - 1 + w.bears, 0
    FROM w JOIN finance_payment pay ON pay.invoice_id = w.id
    WHERE pay.paid_day - 1 + w.bears >= w.start_day AND pay.paid_day - 1 + w.bears < w.end_day
),
segments AS (
    SELECT ends.*,
           LAG(segment_end, 1, start_day - 1)
               OVER (PARTITION BY id ORDER BY segment_end) AS after_day,
           {greatest}(0, {least}(owed, debt + COALESCE((
               SELECT SUM({pay_minor}) FROM finance_payment pay
               WHERE pay.invoice_id = ends.id AND pay.paid_day - 1 + ends.bears >= segment_end
           ), 0))) AS bearing
    FROM ends
),
-- Totals on every segment of the invoice, kept on its last: a window, not a GROUP BY joined
-- back (the planner cannot count the groups of a CTE and would loop over them).
totals AS (
    SELECT segments.*,
           SUM((segment_end - after_day) * bearing) OVER (PARTITION BY id) AS basis,
           SUM(CASE WHEN bearing > 0 THEN (segment_end - anchor) / fee_period_days
                                          - (after_day - anchor) / fee_period_days
                    ELSE 0 END) OVER (PARTITION BY id) AS periods
    FROM segments
)
SELECT id, start_day, end_day, end_day - start_day + 1, basis * 1.0 / scale, annual_rate,
       basis * rate, fixed_fee * periods,
       CASE WHEN cap IS NULL THEN basis * rate + fee_parts * periods
            ELSE {least}(basis * rate + fee_parts * periods, {greatest}(cap - accrued, 0))
       END,
       %(today_day)s
FROM totals
WHERE is_last = 1  -- also what SQLite needs: a bare ON after FROM reads as a join condition
ON CONFLICT DO NOTHING
"""

# Every invoice with work left is brought to today: its exact total, rounded half-up to the
# minor unit by integer division (the one rounding point), and whether it stays open. The row
# re-check and the future payments are bounded to the range too: without it the planner hashed
# every invoice (or payment) of the table for each range, so each range cost the whole table
# (a same-day re-run at ten million invoices: 125 s, against 2.2 s at one million).
SETTLE = """
UPDATE finance_invoice SET
    penalty_parts = n.parts,
    penalty = {quotient} * 1.0 / n.scale,
    penalty_through_day = %(today_day)s,
    penalty_open = (n.debt > 0 OR EXISTS (SELECT 1 FROM finance_payment pay
                                          WHERE pay.invoice_id = n.id
                                            AND pay.invoice_id BETWEEN %(lo)s AND %(hi)s
                                            AND pay.paid_day >= %(today_day)s)),
    days_overdue = CASE WHEN n.debt > 0 AND n.due_day < %(today_day)s
                        THEN %(today_day)s - n.due_day ELSE 0 END,
    penalty_computed_at = %(as_of)s,
    penalty_error = ''
FROM (
    SELECT i.id, i.debt, i.due_day, {scale} AS scale, i.penalty_parts + COALESCE((
               SELECT SUM(a.amount_parts) FROM finance_penaltyaccrual a
               WHERE a.invoice_id = i.id AND a.end_day > COALESCE(i.penalty_through_day, -1)
           ), 0) AS parts
    FROM finance_invoice i
    WHERE {due} AND {valid}
) n
WHERE finance_invoice.id = n.id AND finance_invoice.id BETWEEN %(lo)s AND %(hi)s
  -- Re-checked on the row itself, so a concurrent run that settled it first wins alone.
  AND COALESCE(finance_invoice.penalty_through_day, -1) < %(today_day)s
"""

# The ranges (numbered from `first`, `size` ids each) with work in them: an invoice in
# invoice_penalty_due not yet accrued for today, or a payment recorded since the oldest day a
# correction can start from (a superset of LATE's). Read from the two indexes, so a same-day
# re-run visits no range, and a range costs what is in it, not the table's size.
WORK = """
SELECT (i.id - %(first)s) / %(size)s AS k FROM finance_invoice i
WHERE (i.penalty_open OR i.debt > 0)
  AND (i.penalty_through_day < %(today_day)s OR i.penalty_through_day IS NULL)
UNION
SELECT (pay.invoice_id - %(first)s) / %(size)s FROM finance_payment pay
WHERE pay.recorded_at > %(since)s
ORDER BY k
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

    bears = "CASE WHEN p.payment_day_bears_interest THEN 1 ELSE 0 END"
    spell = {
        "least": least,
        "greatest": greatest,
        "policy": POLICY,
        "valid": VALID,
        "due": DUE,
        "late": LATE,
        "bears": bears,
        "scale": SCALE,
        "debt_minor": whole(f"i.debt * {SCALE}"),
        "amount_minor": whole(f"i.amount * {SCALE}"),
        "pay_minor": whole("pay.amount * ends.scale"),
        "rate": whole("p.annual_rate * 10000"),
        # a fee or cap amount (hundredths) x parts per hundredth of a minor unit x minor units
        "fee_parts": f"{whole('p.fixed_fee * 100')} * {PARTS_PER_HUNDREDTH} * {SCALE}",
        "cap_amount": f"{whole('p.cap_amount * 100')} * {PARTS_PER_HUNDREDTH} * {SCALE}",
        # amount (minor units) x cap (0.01 %) / 10,000 of a minor unit = x 36,500 parts
        "cap_percent": f"{whole(f'i.amount * {SCALE}')} * {whole('p.cap_percent * 100')} * 36500",
        "quotient": spelled["quotient"].format(
            f"n.parts + {PARTS_PER_MINOR // 2}", str(PARTS_PER_MINOR)
        ),
    }
    spell["last_owed"] = LAST_OWED.format(
        bears=bears,
        debt_minor=spell["debt_minor"],
        later_minor=whole(f"later.amount * {SCALE}"),
    )
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
        Invoice.objects.filter(
            Q(penalty_open=True) | Q(debt__gt=0), penalty_through_day__isnull=False
        )
        .order_by("penalty_through_day")
        .values_list("penalty_through_day", flat=True)
        .first()
    )
    day = today if oldest is None else min(today, EPOCH + timedelta(days=oldest))
    return timezone.make_aware(datetime.combine(day, time.min))


def work_ranges(first: int, size: int, today: date, since: datetime) -> list[int]:
    """The first id of each range of `size` ids, counted from `first`, that has work for
    `today`: ranges with nothing to do are not visited."""
    params = {
        "first": first,
        "size": size,
        "today_day": day_number(today),
        "since": connection.ops.adapt_datetimefield_value(since),
    }
    with connection.cursor() as cursor:
        cursor.execute(WORK, params)
        return [first + k * size for (k,) in cursor.fetchall()]


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
