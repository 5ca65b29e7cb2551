"""Benchmark of working blocking deadlines out again in working time (notifications.deadlines)
on PostgreSQL: what the nightly job `blocking_deadlines` and a switch of the working calendar
do. Prints figures; asserts nothing.

    .venv/bin/python -m bench.deadlines [--users 500] [--groups 20]

Gives each of USERS people GROUPS open blocking notifications, each from another day's run
(so every one is its own grace to count: the worst case), with the calendar on and Germany's
holidays, then works them all out twice: the first time every deadline moves off the wall
clock; the second time nothing has changed and nothing is written.
"""

import argparse
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock

from bench.common import setup, sql


def build(users: int, groups: int) -> None:
    from crm.models import Team, WorkingCalendar

    team = Team.objects.create(name="North")
    WorkingCalendar.objects.create(
        enabled=True, day_starts=clock(9), day_ends=clock(17), holiday_country="DE"
    )
    sql(
        "INSERT INTO crm_user (username, password, first_name, last_name, email, is_superuser,"
        " is_staff, is_active, date_joined, role, team_id, session_epoch, time_zone)"
        " SELECT 'user' || g, '!', '', '', '', false, false, true, now(), 'rep', %(team)s, 0,"
        " 'Europe/Berlin' FROM generate_series(1, %(users)s) g",
        {"team": team.pk, "users": users},
    )
    sql(
        "INSERT INTO notifications_notification (user_id, source, object_kind, object_id, title,"
        " note, expires_at, blocking, grace_deadline, grace_from, grace, visible_from, status,"
        " created_at)"
        " SELECT u.id, 'rule:' || d, 'task', d, 'Task due', '', %(start)s + d * interval '1 day',"
        " true, %(start)s + d * interval '1 day' + interval '24 hours',"
        " %(start)s + d * interval '1 day', interval '24 hours', %(start)s + d * interval '1 day',"
        " 'open', %(start)s + d * interval '1 day'"
        " FROM crm_user u CROSS JOIN generate_series(1, %(groups)s) d",
        {"start": datetime(2026, 12, 1, 5, tzinfo=UTC), "groups": groups},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--groups", type=int, default=20)
    args = parser.parse_args()
    setup("vigil_bench_deadlines")
    build(args.users, args.groups)

    from notifications import deadlines
    from notifications.models import Notification

    rows = Notification.objects.count()
    now = datetime(2026, 12, 1, 5, tzinfo=UTC) + timedelta(days=args.groups + 1)
    for label in ("first, every deadline moves", "again, nothing changed"):
        started = time.perf_counter()
        written = deadlines.reschedule(Notification.objects.all(), now)
        took = time.perf_counter() - started
        print(
            f"blocking_deadlines, {label}: {rows:,} open blocking notifications of "
            f"{args.users} people in {took:.2f} s, {written:,} written"
        )


if __name__ == "__main__":
    main()
