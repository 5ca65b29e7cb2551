"""Benchmark of parc_generate on PostgreSQL. Prints figures; asserts nothing.

    .venv/bin/python -m bench.parc [--agreements 10000]

Builds AGREEMENTS active agreements (weekly, fortnightly and monthly plans over 100 accounts
and their managers), then times the first weekly run through the engine (each due visit's
opportunity, two tasks and dispatch, and the summaries) and a re-run of the same slot, which
must create nothing. Target: the first run under 10 s on a 2-core machine, memory flat.
"""

import argparse
from datetime import UTC, datetime

from bench.common import peak_rss_mb, setup, sql, timed

MONDAY = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
PLANS = ["FREQ=WEEKLY;BYDAY=TU", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TH", "FREQ=MONTHLY;BYDAY=-1FR"]


def build(agreements: int) -> None:
    sql("INSERT INTO crm_team (name, kind) VALUES ('Inspectors', 'visiting')")
    sql(
        "INSERT INTO crm_user (password, is_superuser, username, first_name, last_name, email,"
        " is_staff, is_active, date_joined, role, session_epoch)"
        " SELECT '!', false, 'manager' || n, '', '', 'manager' || n || '@vigil.example',"
        " true, true, now(), 'manager', 0 FROM generate_series(1, 100) n"
    )
    sql(
        "INSERT INTO crm_account (name, account_manager_id, created_at)"
        " SELECT 'Account ' || n, (SELECT min(id) FROM crm_user) + n - 1, now()"
        " FROM generate_series(1, 100) n"
    )
    sql(
        "INSERT INTO parc_agreement (account_id, visiting_team_id, plan, first_visit,"
        " visit_time, visit_duration, inspection_offset_days, follow_up_working_days,"
        " opportunity_amount, opportunity_name, active, notes)"
        " SELECT (SELECT min(id) FROM crm_account) + n %% 100, (SELECT id FROM crm_team),"
        " (%s::text[])[1 + n %% 3], date '2026-01-05' + (n %% 28), time '09:00',"
        " interval '2 hours', 0, 5, 450, 'PARC visit {account} {date}', true, ''"
        " FROM generate_series(1, %s) n",
        [PLANS, agreements],
    )
    sql("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agreements", type=int, default=10_000)
    parser.add_argument("--database", default="vigil_bench_parc")
    args = parser.parse_args()
    setup(args.database)
    from crm import runner
    from parc.models import ParcVisit

    build(args.agreements)
    # Last week's visits exist already, as they would in production: the run is one week.
    runner.run_job("parc_generate", MONDAY.replace(day=16), force=True)
    before = ParcVisit.objects.count()
    rss_before = peak_rss_mb()
    times: dict[str, float] = {}
    with timed(times, "first"):
        first = runner.run_job("parc_generate", MONDAY, force=True)
    with timed(times, "rerun"):
        rerun = runner.run_job("parc_generate", MONDAY, force=True)
    print(f"agreements: {args.agreements:,}; visits before this week: {before:,}")
    print(f"first run: {times['first']:.2f} s, {first.status}, {first.counts}")
    print(f"re-run:    {times['rerun']:.2f} s, {rerun.status}, {rerun.counts}")
    print(f"peak memory: {rss_before:.0f} MB before the week's run, {peak_rss_mb():.0f} MB after")
    print("target: first run under 10 s, re-run creates 0, memory flat")


if __name__ == "__main__":
    main()
