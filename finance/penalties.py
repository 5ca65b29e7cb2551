"""Late penalties, computed by the database over ranges of invoices.

Rules (see PenaltyPolicy):
- An invoice is due on voucher date + payment terms. Penalty starts the day after due date +
  grace days, and counts only while a debt is outstanding.
- Interest is simple and daily: each day's outstanding debt x annual rate / 365 (so a leap year
  charges 366/365 of the rate). The debt on a day is today's debt plus every payment made after
  that day, so a partial payment lowers the interest from its date on. Interest already accrued
  stays owed after the principal is paid.
- A fixed fee is charged for every full fee period overdue.
- An optional cap (an amount, a % of the invoice, or the lower of both) limits the total.
- Money is Decimal end to end; the ledger keeps 10 decimal places and the one rounding point is
  Invoice.penalty: the ledger total rounded half-up to the cent. The same as_of always gives
  the same figures, however often or seldom the job runs.
- Invoices with a negative debt or an impossible voucher date (after as_of, or before 2000)
  are skipped and counted as data errors.
"""

from datetime import date, datetime
from typing import Any

from django.db import connection

from finance.models import EPOCH

OLDEST_VOUCHER = date(2000, 1, 1)

# Vendor spellings of the two functions SQL does not share.
_SPELLING = {"postgresql": ("LEAST", "GREATEST"), "sqlite": ("MIN", "MAX")}

VALID = """i.debt >= 0 AND i.voucher_date BETWEEN %(oldest)s AND %(today)s"""

# Each policy field of the invoice's account policy, or of the default policy.
POLICY = """JOIN finance_penaltypolicy p ON p.id = COALESCE(
        (SELECT ap.id FROM finance_penaltypolicy ap WHERE ap.account_id = i.account_id),
        (SELECT dp.id FROM finance_penaltypolicy dp WHERE dp.account_id IS NULL))"""

CORRECT = """
DELETE FROM finance_penaltyaccrual
WHERE invoice_id BETWEEN %(lo)s AND %(hi)s AND EXISTS (
    SELECT 1 FROM finance_payment pay JOIN finance_invoice i ON i.id = pay.invoice_id
    WHERE i.id = finance_penaltyaccrual.invoice_id
      AND pay.recorded_at > i.penalty_computed_at
      AND pay.paid_day <= finance_penaltyaccrual.end_day)
"""

RESET = """
UPDATE finance_invoice SET
    penalty_through_day = (SELECT MAX(a.end_day) FROM finance_penaltyaccrual a
                           WHERE a.invoice_id = finance_invoice.id),
    penalty_accrued = COALESCE((SELECT SUM(a.amount) FROM finance_penaltyaccrual a
                                WHERE a.invoice_id = finance_invoice.id), 0)
WHERE id BETWEEN %(lo)s AND %(hi)s AND penalty_computed_at IS NOT NULL AND EXISTS (
    SELECT 1 FROM finance_payment pay
    WHERE pay.invoice_id = finance_invoice.id
      AND pay.recorded_at > finance_invoice.penalty_computed_at
      AND pay.paid_day <= COALESCE(finance_invoice.penalty_through_day, pay.paid_day))
"""

ACCRUE = """
INSERT INTO finance_penaltyaccrual (invoice_id, start_day, end_day, days, balance_days,
                                    annual_rate, interest, fees, amount, run_day)
SELECT id, start_day, end_day, end_day - start_day + 1, basis, annual_rate,
       basis * annual_rate / 36500.0, fees,
       CASE WHEN cap IS NULL THEN basis * annual_rate / 36500.0 + fees
            ELSE {least}(basis * annual_rate / 36500.0 + fees, {greatest}(cap - accrued, 0))
       END,
       %(today_day)s
FROM (
    SELECT w.*,
           (w.end_day - w.start_day + 1) * w.debt + COALESCE((
               SELECT SUM(pay.amount * ({least}(w.end_day, pay.paid_day - 1) - w.start_day + 1))
               FROM finance_payment pay
               WHERE pay.invoice_id = w.id AND pay.paid_day > w.start_day), 0) AS basis,
           w.fixed_fee * ((w.end_day - w.anchor) / w.fee_period_days
                          - (w.start_day - 1 - w.anchor) / w.fee_period_days) AS fees
    FROM (
        SELECT i.id, i.debt, i.penalty_accrued AS accrued, p.annual_rate, p.fixed_fee,
               p.fee_period_days, i.due_day + p.grace_days AS anchor,
               {greatest}(COALESCE(i.penalty_through_day + 1, 0),
                          i.due_day + p.grace_days + 1) AS start_day,
               CASE WHEN i.debt > 0 THEN %(today_day)s
                    ELSE {least}(%(today_day)s, (SELECT MAX(pay.paid_day) - 1
                                 FROM finance_payment pay WHERE pay.invoice_id = i.id))
               END AS end_day,
               CASE WHEN p.cap_amount IS NULL AND p.cap_percent IS NULL THEN NULL
                    WHEN p.cap_percent IS NULL THEN p.cap_amount
                    WHEN p.cap_amount IS NULL THEN i.amount * p.cap_percent / 100.0
                    ELSE {least}(p.cap_amount, i.amount * p.cap_percent / 100.0)
               END AS cap
        FROM finance_invoice i {policy}
        WHERE i.id BETWEEN %(lo)s AND %(hi)s AND {valid}
          AND COALESCE(i.penalty_through_day, -1) < %(today_day)s
          AND i.due_day + p.grace_days < %(today_day)s
    ) w
    WHERE w.end_day >= w.start_day
) v
WHERE true  -- SQLite reads a bare "ON" after a subquery as a join condition
ON CONFLICT DO NOTHING
"""

SETTLE = """
UPDATE finance_invoice SET
    penalty_accrued = n.accrued,
    penalty = ROUND(n.accrued, 2),
    penalty_through_day = %(today_day)s,
    days_overdue = CASE WHEN n.debt > 0 AND n.due_day < %(today_day)s
                        THEN %(today_day)s - n.due_day ELSE 0 END,
    penalty_computed_at = %(as_of)s
FROM (
    SELECT i.id, i.debt, i.due_day, i.penalty_accrued + COALESCE(a.amount, 0) AS accrued
    FROM finance_invoice i
    LEFT JOIN finance_penaltyaccrual a
           ON a.invoice_id = i.id AND a.run_day = %(today_day)s
          AND a.end_day > COALESCE(i.penalty_through_day, -1)
    WHERE i.id BETWEEN %(lo)s AND %(hi)s AND {valid}
      AND COALESCE(i.penalty_through_day, -1) < %(today_day)s
      AND (i.debt > 0 OR a.id IS NOT NULL OR EXISTS (
               SELECT 1 FROM finance_payment pay
               WHERE pay.invoice_id = i.id AND pay.recorded_at > i.penalty_computed_at))
) n
WHERE finance_invoice.id = n.id
  -- Re-checked on the row itself, so a concurrent run that settled it first wins alone.
  AND COALESCE(finance_invoice.penalty_through_day, -1) < %(today_day)s
"""

DATA_ERRORS = """
SELECT COUNT(*) FROM finance_invoice i
WHERE i.id BETWEEN %(lo)s AND %(hi)s AND NOT ({valid})
"""


def statements() -> dict[str, str]:
    least, greatest = _SPELLING[connection.vendor]
    spell = {"least": least, "greatest": greatest, "policy": POLICY, "valid": VALID}
    return {
        "correct": CORRECT,
        "reset": RESET,
        "accrue": ACCRUE.format(**spell),
        "settle": SETTLE.format(**spell),
        "data_errors": DATA_ERRORS.format(**spell),
    }


def day_number(day: date) -> int:
    return (day - EPOCH).days


def accrue_range(lo: int, hi: int, today: date, as_of: datetime) -> dict[str, int]:
    """Bring every invoice with lo <= id <= hi up to date for `today`. Call inside a
    transaction: the range is done wholly or not at all."""
    params: dict[str, Any] = {
        "lo": lo,
        "hi": hi,
        "today": today,
        "today_day": day_number(today),
        "as_of": as_of,
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
