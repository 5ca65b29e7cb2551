"""Benchmark of the private calendar feed (crm/feeds.py) on PostgreSQL. Prints figures; asserts
nothing.

    .venv/bin/python -m bench.calendar_feed [--items 1000] [--reads 40]

Gives one rep ITEMS items in the feed's window, a quarter each events, visits, open tasks and
blocking deadlines (beside 100,000 of other people's), then reads the feed READS times through
Django's handler, as a calendar client does, with no session. Target: under 200 ms at 1,000.
"""

import argparse
import time

from bench.common import percentile, setup, sql


def build(items: int) -> None:
    from django.utils import timezone

    from crm.models import Team, User

    team = Team.objects.create(name="North")
    others = Team.objects.create(name="South")
    rep = User.objects.create(username="rep", team=team)
    other = User.objects.create(username="other", team=others)
    now = timezone.now()
    quarter = items // 4
    for owner, count in ((rep.pk, quarter), (other.pk, 25_000)):
        p = {"owner": owner, "n": count, "now": now}
        sql(
            "INSERT INTO crm_event (title, owner_id, start_at, end_at) SELECT 'Meeting ' || g,"
            " %(owner)s, %(now)s + g * interval '3 hours', %(now)s + g * interval '3 hours'"
            " + interval '1 hour' FROM generate_series(1, %(n)s) g",
            p,
        )
        sql(
            "INSERT INTO crm_dispatch (title, team_id, owner_id, scheduled_at, due_at, status)"
            f" SELECT 'Visit ' || g, {others.pk}, %(owner)s, %(now)s + g * interval '5 hours',"
            " %(now)s + g * interval '5 hours' + interval '2 hours', 'scheduled'"
            " FROM generate_series(1, %(n)s) g",
            p,
        )
        sql(
            "INSERT INTO crm_task (kind, title, owner_id, due_at, status) SELECT 'action',"
            " 'Call, then \"write\"; ' || g, %(owner)s, %(now)s + g * interval '2 hours', 'open'"
            " FROM generate_series(1, %(n)s) g",
            p,
        )
        sql(
            "INSERT INTO notifications_notification (user_id, source, object_kind, object_id,"
            " title, note, link, expires_at, blocking, grace_deadline, visible_from, status,"
            " created_at) SELECT %(owner)s, 'rule:1', 'task', g, 'Stale opportunity ' || g, '',"
            " '', %(now)s, true, %(now)s + g * interval '4 hours', %(now)s, 'open', %(now)s"
            " FROM generate_series(1, %(n)s) g",
            p,
        )
    sql("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=40)
    parser.add_argument("--database", default="vigil_bench_calendar_feed")
    args = parser.parse_args()
    setup(args.database)
    from django.conf import settings
    from django.test import Client

    from crm.feeds import feed_url, new_feed
    from crm.models import User

    settings.ALLOWED_HOSTS = ["testserver"]
    build(args.items)
    url = feed_url(new_feed(User.objects.get(username="rep")))
    path = url[url.index("/feeds/") :]
    client = Client()
    first = client.get(path)
    if first.status_code != 200:
        raise SystemExit(f"the feed answered {first.status_code}")
    shown = first.content.count(b"BEGIN:VEVENT")
    times = []
    for _ in range(args.reads):
        start = time.perf_counter()
        client.get(path)
        times.append((time.perf_counter() - start) * 1000)
    print(
        f"calendar feed: {shown} items ({len(first.content) / 1024:.0f} KB), read {args.reads}"
        f" times: p50 {percentile(times, 50):.0f} ms, p95 {percentile(times, 95):.0f} ms"
        f" (target < 200 ms at 1,000 items)"
    )


if __name__ == "__main__":
    main()
