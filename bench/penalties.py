"""Benchmark of finance_penalties on PostgreSQL. Prints figures; asserts nothing.

    .venv/bin/python -m bench.penalties [--invoices 1000000] [--sample 2000]
        [--database vigil_bench_penalties]

Builds INVOICES invoices (a third partly paid, a tenth fully paid) with COPY-speed
INSERT … SELECT and copies the database (CREATE DATABASE … TEMPLATE), so that the job and one
hand-written SQL statement doing the same accrual each start from the same untouched invoices
(resetting ten million invoices through the aging rollup's triggers took longer than the job).
Then times the first full accrual through the engine, its same-day re-run, the hand-written
SQL on the copy, and a naive per-invoice ORM loop (on a sample, rolled back, extrapolated), and
checks the job and the hand-written SQL write the same figures. Targets (#21 §4): the job within
1.1x of the hand-written SQL, a same-day re-run under 10 s, memory that does not grow with the
number of invoices, and at ten million invoices at most 11x the time at one million: each run
records its figures in var/bench/penalties-<invoices>.json, and a larger run prints its ratios
to the last run at 1,000,000.
"""

import argparse
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from bench.common import on_server, peak_rss_mb, record_and_compare, setup, sql, timed

AS_OF = datetime(2026, 11, 28, 2, 30, tzinfo=UTC)

# The same accrual and the same figures as the job (exact parts, the payment day bearing
# interest, the balance bearing interest between zero and the invoice amount, a fee on each day
# a period completes with something owed, one half-up rounding), for one default policy, a first
# run and invoices in cents, in one statement.
HAND_WRITTEN = """
WITH policy AS (
    SELECT p.*, CASE WHEN p.payment_day_bears_interest THEN 1 ELSE 0 END AS bears,
           ROUND(p.annual_rate * 10000) AS rate, ROUND(p.fixed_fee * 100) AS fee_cents
    FROM finance_penaltypolicy p WHERE p.account_id IS NULL),
windows AS (
    SELECT i.id, ROUND(i.debt * 100) AS debt, ROUND(i.amount * 100) AS owed,
           i.due_day + p.grace_days AS anchor, i.due_day + p.grace_days + 1 AS start_day,
           CASE WHEN i.debt > 0 THEN %(day)s
                ELSE LEAST(%(day)s, COALESCE((
                    SELECT MAX(pay.paid_day) - 1 + p.bears FROM finance_payment pay
                    WHERE pay.invoice_id = i.id AND i.amount > 0
                      AND ROUND(i.debt * 100) + (
                          SELECT SUM(ROUND(later.amount * 100)) FROM finance_payment later
                          WHERE later.invoice_id = i.id AND later.paid_day >= pay.paid_day) > 0
                ), -1))
           END AS end_day,
           p.bears, p.annual_rate, p.rate, p.fixed_fee, p.fee_cents, p.fee_period_days,
           ROUND(i.amount * 100) * ROUND(p.cap_percent * 100) * 36500 AS cap
    FROM finance_invoice i CROSS JOIN policy p
    WHERE i.due_day + p.grace_days < %(day)s
),
ends AS (
    SELECT w.*, w.end_day AS segment_end, 1 AS is_last FROM windows w
    WHERE w.end_day >= w.start_day
    UNION ALL
    SELECT w.*, pay.paid_day - 1 + w.bears, 0
    FROM windows w JOIN finance_payment pay ON pay.invoice_id = w.id
    WHERE pay.paid_day - 1 + w.bears >= w.start_day AND pay.paid_day - 1 + w.bears < w.end_day
),
segments AS (
    SELECT ends.*,
           LAG(segment_end, 1, start_day - 1)
               OVER (PARTITION BY id ORDER BY segment_end) AS after_day,
           GREATEST(0, LEAST(owed, debt + COALESCE((
               SELECT SUM(ROUND(pay.amount * 100)) FROM finance_payment pay
               WHERE pay.invoice_id = ends.id AND pay.paid_day - 1 + ends.bears >= segment_end
           ), 0))) AS bearing
    FROM ends
),
rows AS (
    SELECT * FROM (
        SELECT segments.*,
               SUM((segment_end - after_day) * bearing) OVER (PARTITION BY id) AS basis,
               SUM(CASE WHEN bearing > 0 THEN (segment_end - anchor) / fee_period_days
                                              - (after_day - anchor) / fee_period_days
                        ELSE 0 END) OVER (PARTITION BY id) AS periods
        FROM segments) t
    WHERE is_last = 1
),
inserted AS (
    INSERT INTO finance_penaltyaccrual (invoice_id, start_day, end_day, days, balance_days,
                                        annual_rate, interest_parts, fees, amount_parts, run_day)
    SELECT id, start_day, end_day, end_day - start_day + 1, basis * 1.0 / 100, annual_rate,
           basis * rate, fixed_fee * periods,
           LEAST(basis * rate + fee_cents * periods * 365000000, cap), %(day)s
    FROM rows
    RETURNING invoice_id, amount_parts
)
UPDATE finance_invoice i SET
       penalty_parts = COALESCE(n.parts, 0),
       penalty = div(COALESCE(n.parts, 0) + 182500000, 365000000) * 1.0 / 100,
       penalty_through_day = %(day)s, penalty_computed_at = %(as_of)s,
       days_overdue = CASE WHEN i.debt > 0 THEN GREATEST(%(day)s - i.due_day, 0) ELSE 0 END
FROM (SELECT j.id, ins.amount_parts AS parts
      FROM finance_invoice j LEFT JOIN inserted ins ON ins.invoice_id = j.id
      WHERE j.debt > 0 OR ins.invoice_id IS NOT NULL) n
WHERE n.id = i.id
"""

# What both must agree on: every invoice's figures and every ledger row.
FIGURES = """
SELECT (SELECT md5(string_agg(concat_ws(':', id, penalty, penalty_parts, days_overdue), ','
                              ORDER BY id)) FROM finance_invoice),
       (SELECT md5(string_agg(concat_ws(':', invoice_id, start_day, end_day, balance_days,
                                        interest_parts, fees, amount_parts), ','
                              ORDER BY invoice_id, end_day)) FROM finance_penaltyaccrual),
       (SELECT SUM(penalty) FROM finance_invoice)
"""


def figures() -> tuple:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(FIGURES)
        return cursor.fetchone()


def build(invoices: int, accounts: int = 20000) -> None:
    p = {"n": invoices, "accounts": accounts, "today": AS_OF.date(), "as_of": AS_OF}
    sql(
        "INSERT INTO crm_account (id, name, created_at) "
        "SELECT g, 'Account ' || g, %(as_of)s FROM generate_series(1, %(accounts)s) g",
        p,
    )
    sql(
        """INSERT INTO finance_invoice (account_id, number, voucher_date, payment_terms_days,
               currency, amount, debt, days_overdue, penalty_parts, penalty)
           SELECT 1 + g %% %(accounts)s, 'INV-' || g, %(today)s::date - (g %% 365),
                  (ARRAY[15, 30, 60])[1 + g %% 3], 'EUR', 100 + g %% 900,
                  CASE WHEN g %% 10 = 0 THEN 0 WHEN g %% 3 = 0 THEN (100 + g %% 900) / 2.0
                       ELSE 100 + g %% 900 END, 0, 0, 0
           FROM generate_series(1, %(n)s) g""",
        p,
    )
    sql(
        """INSERT INTO finance_payment (invoice_id, paid_on, amount, recorded_at)
           SELECT i.id, LEAST(i.voucher_date + (45 + i.id %% 40)::int, %(today)s::date),
                  i.amount - i.debt, %(as_of)s - interval '1 day'
           FROM finance_invoice i WHERE i.debt < i.amount""",
        p,
    )
    sql("""INSERT INTO finance_penaltypolicy (name, grace_days, annual_rate, fixed_fee,
               fee_period_days, cap_percent)
           VALUES ('Default', 7, 8.125, 25, 30, 10)""")


def use_database(name: str) -> None:
    """Point Django's connection at another database of the same server."""
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = name


def copy_database(source: str, copy: str) -> None:
    """A file-level copy of `source`, which nobody may be connected to while it is read."""
    from django.db import connection

    connection.close()
    on_server(
        f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)',
        f'CREATE DATABASE "{copy}" TEMPLATE "{source}" STRATEGY FILE_COPY',
    )


def naive(sample: int) -> float:
    """What a per-invoice loop in Python would do, on the first `sample` invoices (in cents)."""
    from finance.models import PARTS_PER_MINOR, Invoice, PenaltyAccrual, PenaltyPolicy
    from finance.penalties import day_number

    per_unit = PARTS_PER_MINOR * 100
    policy = PenaltyPolicy.objects.get(account=None)
    today = AS_OF.date()
    anchor = timedelta(days=policy.grace_days)
    start = time.perf_counter()
    for inv in Invoice.objects.order_by("pk")[:sample]:
        first = inv.due_date + anchor + timedelta(days=1)
        payments = list(inv.payments.all())
        last_paid = max((p.paid_on for p in payments), default=first)
        basis, periods, day = Decimal(0), 0, first
        while day <= today and (inv.debt > 0 or day <= last_paid):
            balance = inv.debt + sum(p.amount for p in payments if p.paid_on >= day)
            bearing = max(Decimal(0), min(inv.amount, balance))
            basis += bearing
            periods += bearing > 0 and ((day - first).days + 1) % policy.fee_period_days == 0
            day += timedelta(days=1)
        if day == first:
            continue
        interest = basis * 100 * policy.annual_rate * 10000  # exact parts
        fees = policy.fixed_fee * periods
        cap = inv.amount * policy.cap_percent / 100 * per_unit
        amount = min(interest + fees * per_unit, cap)
        PenaltyAccrual.objects.create(
            invoice=inv,
            start_day=day_number(first),
            end_day=day_number(day) - 1,
            days=(day - first).days,
            balance_days=basis,
            annual_rate=policy.annual_rate,
            interest_parts=interest,
            fees=fees,
            amount_parts=amount,
            run_day=day_number(today),
        )
        cents = (amount + PARTS_PER_MINOR // 2) // PARTS_PER_MINOR
        inv.penalty_parts, inv.penalty = amount, Decimal(cents) / 100
        inv.save(update_fields=["penalty_parts", "penalty"])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--database", default="vigil_bench_penalties", help="dropped and rebuilt")
    args = parser.parse_args()
    setup(args.database)
    from django.db import transaction

    from crm import runner
    from finance.models import PenaltyAccrual
    from finance.penalties import day_number

    results: dict[str, float] = {}
    with timed(results, "build"):
        build(args.invoices)
        sql("VACUUM ANALYZE")
    hand_database = f"{args.database}_hand"
    with timed(results, "copy"):
        copy_database(args.database, hand_database)
    print(
        f"data                  {args.invoices:,} invoices built in {results['build']:.0f} s "
        f"(copied for the hand-written SQL in {results['copy']:.0f} s)"
    )
    try:
        rss_before = peak_rss_mb()
        with timed(results, "job"):
            run = runner.run_job("finance_penalties", AS_OF)
        rss_after = peak_rss_mb()
        job_rows = PenaltyAccrual.objects.count()
        with timed(results, "rerun"):
            rerun = runner.run_job("finance_penalties", AS_OF)
        job_figures = figures()

        use_database(hand_database)
        with transaction.atomic():
            naive_s = naive(args.sample)
            transaction.set_rollback(True)  # the hand-written SQL starts from the same invoices
        naive_total = naive_s / args.sample * args.invoices
        with timed(results, "hand"):
            sql(HAND_WRITTEN, {"day": day_number(date(2026, 11, 28)), "as_of": AS_OF})
        hand_rows = PenaltyAccrual.objects.count()
        agree = figures() == job_figures
    finally:
        use_database(args.database)
        on_server(f'DROP DATABASE IF EXISTS "{hand_database}" WITH (FORCE)')

    print(f"finance_penalties     first full accrual: {run.counts}")
    print(f"  job                 {results['job']:8.2f} s   ({job_rows:,} ledger rows)")
    print(f"  hand-written SQL    {results['hand']:8.2f} s   ({hand_rows:,} ledger rows)")
    print(f"  ratio               {results['job'] / results['hand']:8.2f} x   (target <= 1.1)")
    print(
        f"  same figures        {'yes' if agree else 'NO'}: every invoice's penalty and every "
        f"ledger row (total penalty {job_figures[2]})"
    )
    print(
        f"  naive ORM loop      {naive_total:8.0f} s   extrapolated from {args.sample:,} "
        f"invoices in {naive_s:.1f} s ({naive_total / results['job']:.0f}x the job)"
    )
    print(f"  re-run same day     {results['rerun']:8.2f} s, {rerun.counts}   (target < 10)")
    print(f"  peak memory         {rss_after:8.0f} MB (before the job: {rss_before:.0f} MB)")
    record_and_compare(
        "penalties",
        args.invoices,
        {"peak_mb": rss_after, **results},
        [("job", "job"), ("hand", "hand-written SQL"), ("peak_mb", "peak memory (MB)")],
    )


if __name__ == "__main__":
    main()
