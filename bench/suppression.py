"""Benchmark of suppression_build on PostgreSQL. Prints figures; asserts nothing.

    .venv/bin/python -m bench.suppression [--contacts 1000000] [--rejected 0.25]

Builds CONTACTS contacts, a share of them rejected (mixed case and stray spaces, one in ten
rejected addresses shared by two contacts, a thousand with an IDN domain), then times through
the engine the first build, a re-run (lists nothing new) and a build after 1 % more contacts
were rejected. Target: under 10 s over 1,000,000 contacts.
"""

import argparse
from datetime import UTC, datetime, timedelta

from bench.common import peak_rss_mb, setup, sql, timed

NIGHT = datetime(2026, 11, 23, 0, 15, tzinfo=UTC)


def build(contacts: int, rejected: float) -> None:
    sql(
        "INSERT INTO crm_account (name, created_at)"
        " SELECT 'Account ' || n, now() FROM generate_series(1, 1000) n"
    )
    sql(
        "INSERT INTO crm_contact (account_id, name, email, phone, status)"
        " SELECT (SELECT min(id) FROM crm_account) + n %% 1000, 'Contact ' || n,"
        "  CASE WHEN n %% 1000 = 7 THEN 'Kontakt' || n || '@Bücher-' || n || '.example'"
        "       WHEN n %% 10 = 3 THEN ' Shared' || (n / 20) || '@Client.Example '"
        "       ELSE 'contact' || n || '@client' || (n %% 97) || '.example' END,"
        "  '', CASE WHEN random() < %s OR n %% 1000 = 7 THEN 'rejected' ELSE 'active' END"
        " FROM generate_series(1, %s) n",
        [rejected, contacts],
    )
    sql("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--rejected", type=float, default=0.25, help="share of rejected contacts")
    parser.add_argument("--database", default="vigil_bench_suppression")
    args = parser.parse_args()
    setup(args.database)
    from crm import runner
    from crm.models import Contact
    from mailsync.models import Suppression

    times: dict[str, float] = {}
    with timed(times, "fill"):
        build(args.contacts, args.rejected)
    rejected = Contact.objects.filter(status="rejected").count()
    runs = {}
    with timed(times, "first"):
        runs["first"] = runner.run_job("suppression_build", NIGHT, force=True)
    with timed(times, "re-run"):
        runs["re-run"] = runner.run_job("suppression_build", NIGHT + timedelta(hours=1))
    sql("UPDATE crm_contact SET status = 'rejected' WHERE status = 'active' AND id % 100 = 0")
    with timed(times, "next day"):
        runs["next day"] = runner.run_job("suppression_build", NIGHT + timedelta(days=1))

    print(f"{args.contacts:,} contacts, {rejected:,} rejected (filled in {times['fill']:.1f} s)")
    for name, run in runs.items():
        print(f"  {name:>8}: {times[name]:6.2f} s  {run.status}  {run.counts}")
    print(f"  listed: {Suppression.objects.count():,}; peak memory {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
