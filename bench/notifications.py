"""Benchmark of the notifications processes on PostgreSQL. Prints figures; asserts nothing.

    .venv/bin/python -m bench.notifications [--rows 1000000] [--clients 20] [--seconds 20]
        [--database vigil_bench_notifications] [--before REV] [--dashboard-only] [--jobs-only]
        [--reuse]

Builds ROWS tasks, opportunities, events and invoices (and ROWS/10 dispatches) in a separate
database, then times:
  1. notifications_daily through the job engine, next to hand-written SQL doing the same work
     (target: within 1.1x), its idempotent same-day re-run (target: under 10 s), and a re-run
     after CHANGED tasks spread over the table were given another due date;
  2. the expired_jobs_alert scan (target: under 100 ms);
  3. pages under CLIENTS concurrent clients on gunicorn (PAGES: a rep's, a manager's and the
     administrator's dashboard, and Settings): paced (about a second between pages: target
     p95 under 60 ms for a rep's dashboard) and without pause (targets: a rep's dashboard 150
     pages/s, a manager's 100, Settings no slower than a rep's dashboard). With --before REV,
     the same load first runs on the code of git revision REV (checked out in a temporary
     worktree, same database), and a table gives before -> after with the ratios.
     --dashboard-only reuses the database of an earlier run and times the pages alone;
     --jobs-only skips them; --reuse skips the build, on the database an earlier run built.
Each run keeps the job's figures in var/bench/notifications-<rows>.json; a run above a million
rows prints its ratios to the last run at 1,000,000 (#21 §4: at most 11x the time for 10x the
rows, memory flat).
"""

import argparse
import asyncio
import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import peak_rss_mb, percentile, record_and_compare, setup, sql, timed

ROOT = Path(__file__).resolve().parent.parent
REPS, TEAMS, ACCOUNTS = 200, 10, 20_000
CHANGED = 1_000  # tasks edited between the same-day runs
PASSWORD = "bench-password"  # noqa: S105 - a throw-away database's users


def build(rows: int, as_of: datetime) -> None:
    from django.contrib.auth.hashers import make_password

    digest = make_password(PASSWORD)
    p = {
        "as_of": as_of,
        "rows": rows,
        "pw": digest,
        "reps": REPS,
        "teams": TEAMS,
        "accounts": ACCOUNTS,
    }
    sql(
        """INSERT INTO crm_team (id, name, kind)
           SELECT g, 'Team ' || g, CASE WHEN g > %(teams)s THEN 'visiting' ELSE 'sales' END
           FROM generate_series(1, %(teams)s + 2) g""",
        p,
    )
    user = """INSERT INTO crm_user (id, password, is_superuser, username, first_name, last_name,
              email, is_staff, is_active, date_joined, role, team_id, manager_id, session_epoch)"""
    sql(
        user
        + """ SELECT g, %(pw)s, false, 'manager' || g, 'Manager', g::text,
           'manager' || g || '@bench.example', false, true, %(as_of)s, 'manager', g, NULL, 0
           FROM generate_series(1, %(teams)s) g""",
        p,
    )
    sql(
        user
        + """ SELECT 1000 + g, %(pw)s, false, 'rep' || g, 'Rep', g::text,
           'rep' || g || '@bench.example', false, true, %(as_of)s, 'rep', 1 + g %% %(teams)s,
           1 + g %% %(teams)s, 0
           FROM generate_series(0, %(reps)s - 1) g""",
        p,
    )
    sql(
        user
        + """ VALUES (2000, %(pw)s, true, 'admin', 'Ada', 'Admin', 'admin@bench.example', true,
           true, %(as_of)s, 'admin', NULL, NULL, 0)""",
        p,
    )
    sql(
        """INSERT INTO crm_account (id, name, account_manager_id, team_id, created_at)
           SELECT g, 'Account ' || g, 1 + g %% %(teams)s, 1 + g %% %(teams)s, %(as_of)s
           FROM generate_series(1, %(accounts)s) g""",
        p,
    )
    sql(
        """INSERT INTO crm_task (kind, title, owner_id, account_id, opportunity_id, due_at,
                                 status, completed_at)
           SELECT 'action', 'Task ' || g, 1000 + g %% %(reps)s, 1 + g %% %(accounts)s, NULL,
                  %(as_of)s + ((g %% 2880) - 1440) * interval '1 hour',
                  CASE WHEN g %% 3 = 0 THEN 'done' ELSE 'open' END, NULL
           FROM generate_series(1, %(rows)s) g""",
        p,
    )
    sql(
        """INSERT INTO crm_opportunity (account_id, name, owner_id, stage, amount,
                                        expected_close, updated_at)
           SELECT 1 + g %% %(accounts)s, 'Deal ' || g, 1000 + g %% %(reps)s,
                  (ARRAY['prospecting','qualification','proposal','negotiation','won','lost'])
                      [1 + g %% 6],
                  (g %% 500) * 100, %(as_of)s::date + (g %% 180 - 90), %(as_of)s - (g %% 60) *
                  interval '1 day'
           FROM generate_series(1, %(rows)s) g""",
        p,
    )
    sql(
        """INSERT INTO crm_event (title, owner_id, account_id, start_at, end_at)
           SELECT 'Event ' || g, 1000 + g %% %(reps)s, 1 + g %% %(accounts)s,
                  %(as_of)s + ((g %% 2880) - 1440) * interval '1 hour',
                  %(as_of)s + ((g %% 2880) - 1439) * interval '1 hour'
           FROM generate_series(1, %(rows)s) g""",
        p,
    )
    sql(
        """INSERT INTO finance_invoice (account_id, number, voucher_date, payment_terms_days,
                                        currency, amount, debt)
           SELECT 1 + g %% %(accounts)s, 'INV-' || g, %(as_of)s::date - (g %% 150), 30, 'EUR',
                  100 + g %% 900, CASE WHEN g %% 2 = 0 THEN 0 ELSE 100 + g %% 900 END
           FROM generate_series(1, %(rows)s) g""",
        p,
    )
    sql(
        """INSERT INTO crm_dispatch (title, team_id, account_id, owner_id, scheduled_at, due_at,
                                     status)
           SELECT 'Dispatch ' || g, %(teams)s + 1 + g %% 2, 1 + g %% %(accounts)s,
                  1000 + g %% %(reps)s, %(as_of)s + ((g %% 1440) - 720) * interval '1 hour',
                  %(as_of)s + ((g %% 1440) - 716) * interval '1 hour',
                  CASE WHEN g %% 4 = 0 THEN 'done' ELSE 'scheduled' END
           FROM generate_series(1, %(rows)s / 10) g""",
        p,
    )
    for table in ("crm_team", "crm_user", "crm_account"):
        sql(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )  # noqa: S608
    sql("VACUUM ANALYZE")


def make_rules():
    from notifications.models import ReminderRule

    common = {"lead_time": timedelta(days=1)}
    return [
        ReminderRule.objects.create(name="Task due", object_kind="task", **common),
        ReminderRule.objects.create(
            name="Closing",
            object_kind="opportunity",
            lead_time=timedelta(days=7),
            notify_manager=True,
        ),
        ReminderRule.objects.create(name="Event", object_kind="event", **common),
        ReminderRule.objects.create(
            name="Invoice due", object_kind="invoice", lead_time=timedelta(days=3)
        ),
        ReminderRule.objects.create(
            name="Untouched",
            object_kind="opportunity",
            trigger="untouched",
            untouched_days=30,
            lead_time=timedelta(0),
        ),
    ]


HAND_WRITTEN = """
INSERT INTO notifications_notification (user_id, source, rule_id, object_kind, object_id, title,
    note, expires_at, blocking, grace_deadline, visible_from, status, created_at)
SELECT t.owner_id, 'rule:' || %(r0)s, %(r0)s, 'task', t.id, 'Task due: ' || t.title, '',
       t.due_at, false, NULL, %(as_of)s, 'open', %(as_of)s
FROM crm_task t WHERE t.status = 'open' AND t.due_at <= %(as_of)s + interval '1 day'
ON CONFLICT DO NOTHING;
INSERT INTO notifications_notification (user_id, source, rule_id, object_kind, object_id, title,
    note, expires_at, blocking, grace_deadline, visible_from, status, created_at)
SELECT u.id, 'rule:' || %(r1)s, %(r1)s, 'opportunity', o.id, 'Closing: ' || o.name, '',
       o.expected_close::timestamptz, false, NULL, %(as_of)s, 'open', %(as_of)s
FROM crm_opportunity o JOIN crm_user owner ON owner.id = o.owner_id
CROSS JOIN LATERAL (VALUES (o.owner_id), (owner.manager_id)) AS u(id)
WHERE o.stage IN ('prospecting','qualification','proposal','negotiation')
  AND o.expected_close <= (%(as_of)s + interval '7 days')::date AND u.id IS NOT NULL
ON CONFLICT DO NOTHING;
INSERT INTO notifications_notification (user_id, source, rule_id, object_kind, object_id, title,
    note, expires_at, blocking, grace_deadline, visible_from, status, created_at)
SELECT e.owner_id, 'rule:' || %(r2)s, %(r2)s, 'event', e.id, 'Event: ' || e.title, '',
       e.start_at, false, NULL, %(as_of)s, 'open', %(as_of)s
FROM crm_event e WHERE e.end_at >= %(as_of)s AND e.start_at <= %(as_of)s + interval '1 day'
ON CONFLICT DO NOTHING;
INSERT INTO notifications_notification (user_id, source, rule_id, object_kind, object_id, title,
    note, expires_at, blocking, grace_deadline, visible_from, status, created_at)
SELECT a.account_manager_id, 'rule:' || %(r3)s, %(r3)s, 'invoice', i.id,
       'Invoice due: ' || i.number, '', i.due_date::timestamptz, false, NULL, %(as_of)s, 'open',
       %(as_of)s
FROM finance_invoice i JOIN crm_account a ON a.id = i.account_id
WHERE i.debt > 0 AND i.due_date <= (%(as_of)s + interval '3 days')::date
  AND a.account_manager_id IS NOT NULL
ON CONFLICT DO NOTHING;
INSERT INTO notifications_notification (user_id, source, rule_id, object_kind, object_id, title,
    note, expires_at, blocking, grace_deadline, visible_from, status, created_at)
SELECT o.owner_id, 'rule:' || %(r4)s, %(r4)s, 'opportunity', o.id, 'Untouched: ' || o.name, '',
       o.updated_at + interval '30 days', false, NULL, %(as_of)s, 'open', %(as_of)s
FROM crm_opportunity o
WHERE o.stage IN ('prospecting','qualification','proposal','negotiation')
  AND o.updated_at <= %(as_of)s - interval '30 days'
ON CONFLICT DO NOTHING;
UPDATE notifications_notification n SET status = 'closed', resolved_at = %(as_of)s
WHERE n.status = 'open' AND NOT (
     (n.object_kind = 'task' AND EXISTS (SELECT 1 FROM crm_task t
                                         WHERE t.id = n.object_id AND t.status = 'open'))
  OR (n.object_kind = 'opportunity' AND EXISTS (SELECT 1 FROM crm_opportunity o
      WHERE o.id = n.object_id AND o.stage IN ('prospecting','qualification','proposal',
                                                'negotiation')))
  OR (n.object_kind = 'event' AND EXISTS (SELECT 1 FROM crm_event e
                                          WHERE e.id = n.object_id AND e.end_at >= %(as_of)s))
  OR (n.object_kind = 'invoice' AND EXISTS (SELECT 1 FROM finance_invoice i
                                            WHERE i.id = n.object_id AND i.debt > 0))
  OR (n.object_kind = 'dispatch' AND EXISTS (SELECT 1 FROM crm_dispatch d
      WHERE d.id = n.object_id AND d.status IN ('scheduled', 'in_progress'))));
"""


def daily(as_of: datetime, results: dict) -> int:
    from crm import runner
    from crm.models import Task
    from notifications.changes import SWEEP_SETTING
    from notifications.models import Notification, ReminderRule

    sql("TRUNCATE notifications_notification CASCADE")
    ReminderRule.objects.all().delete()  # a database built by an earlier run (--reuse)
    rules = make_rules()
    params = {"as_of": as_of, **{f"r{i}": rule.pk for i, rule in enumerate(rules)}}
    # Alternate (hand SQL, job) twice on an empty table each time, and keep each one's best
    # (once above a million rows, where a run takes minutes); the same-day re-run follows the
    # last job.
    attempts = (1, 2) if Task.objects.count() <= 1_000_000 else (1,)
    for attempt in attempts:
        sql("TRUNCATE notifications_notification CASCADE")  # the next run reads everything
        # The hand-written SQL's writes, like the job's own, mark no change (their triggers
        # still run: notifications.changes).
        sql("SELECT set_config(%s, 'on', false)", [SWEEP_SETTING])
        try:
            with timed(results, f"hand{attempt}"):
                sql(HAND_WRITTEN, params)
        finally:
            sql("SELECT set_config(%s, '', false)", [SWEEP_SETTING])
        hand_created = Notification.objects.count()
        sql("TRUNCATE notifications_notification CASCADE")
        with timed(results, f"job{attempt}"):
            run = runner.run_job("notifications_daily", as_of)
        created = run.counts["created"]
    with timed(results, "rerun"):
        rerun = runner.run_job("notifications_daily", as_of)
    # A day's edits: CHANGED tasks spread over the whole table get a due date an hour
    # earlier (a new episode each), and the day is run again.
    sql(
        "UPDATE crm_task SET due_at = due_at - interval '1 hour' WHERE id IN"
        " (SELECT lo + (hi - lo) * k / %(n)s FROM generate_series(0, %(n)s - 1) AS k,"
        "  (SELECT min(id) AS lo, max(id) AS hi FROM crm_task) AS ids)",
        {"n": CHANGED},
    )
    with timed(results, "rerun_changed"):
        changed = runner.run_job("notifications_daily", as_of)
    results["job"] = min(results.pop(f"job{n}") for n in attempts)
    results["hand"] = min(results.pop(f"hand{n}") for n in attempts)
    print(
        f"notifications_daily   created {created:,} notifications "
        f"(hand-written SQL: {hand_created:,})"
    )
    print(f"  job                 {results['job']:8.2f} s")
    print(f"  hand-written SQL    {results['hand']:8.2f} s")
    print(f"  ratio               {results['job'] / results['hand']:8.2f} x   (target <= 1.1)")
    print(
        f"  re-run same day     {results['rerun']:8.2f} s, created {rerun.counts['created']},"
        f" {rerun.counts['ranges']} ranges read   (target < 10)"
    )
    print(
        f"  after {CHANGED:,} tasks moved {results['rerun_changed']:8.2f} s, created"
        f" {changed.counts['created']:,}, {changed.counts['ranges']:,} ranges read"
    )
    return created


def expired_scan(as_of: datetime, results: dict) -> None:
    from crm import runner
    from notifications.jobs import alert_overdue_jobs

    runner.run_job("expired_jobs_alert", as_of)  # the first run alerts the recent backlog
    print("expired_jobs_alert    8 runs 30 min apart over the open tasks and dispatches")
    quiet, busy = [], []
    for i in range(1, 9):
        start = time.perf_counter()
        counts = alert_overdue_jobs(as_of + timedelta(minutes=30 * i))
        elapsed = (time.perf_counter() - start) * 1000
        (busy if counts["overdue"] else quiet).append((elapsed, counts["overdue"]))
    if quiet:
        print(
            f"  scan, nothing new   median {percentile([t for t, _ in quiet], 50):6.1f} ms, "
            f"worst {max(t for t, _ in quiet):6.1f} ms   (target < 100)"
        )
    if busy:
        print(
            f"  scan + alerting     median {percentile([t for t, _ in busy], 50):6.1f} ms, "
            f"worst {max(t for t, _ in busy):6.1f} ms, "
            f"{sum(n for _, n in busy) // len(busy)} new overdue jobs a run"
        )


# The pages timed on one server, before and after: (label, who the clients are, path). 20
# clients are 20 reps, or 5 managers (4 sessions each), or the administrator.
PAGES: list[tuple[str, Callable[[int], list[str]], str]] = [
    ("rep's dashboard", lambda n: [f"rep{i}" for i in range(n)], "/"),
    ("manager's dashboard", lambda n: [f"manager{1 + i % 5}" for i in range(n)], "/"),
    ("administrator's dashboard", lambda n: ["admin"] * n, "/"),
    ("Settings (a rep's)", lambda n: [f"rep{i}" for i in range(n)], "/me/"),
]


def dashboard_load(clients: int, seconds: float, code: Path = ROOT, label: str = "") -> dict:
    """For each of PAGES, two runs on the same server: users who pause about a second between
    pages (a busy office), then clients that never pause (the server's ceiling). Returns the
    figures by page."""
    # The socket is ours, listening before gunicorn starts: requests wait in its backlog until
    # a worker is up, so nothing has to poll for readiness.
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    os.set_inheritable(listener.fileno(), True)
    port = listener.getsockname()[1]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "ALLOWED_HOSTS": "127.0.0.1",
        "PYTHONWARNINGS": "ignore",
    }
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    server = subprocess.Popen(
        [
            gunicorn,
            "crm.wsgi",
            "--bind",
            f"fd://{listener.fileno()}",
            "--workers",
            "4",
            "--log-level",
            "warning",
        ],
        cwd=code,
        env=env,
        start_new_session=True,
        pass_fds=(listener.fileno(),),
    )
    base = f"http://127.0.0.1:{port}"
    figures: dict[str, dict] = {}
    try:
        print(
            f"pages {label:<11} {clients} concurrent clients, {seconds:.0f} s a run, "
            f"gunicorn 4 workers on {os.cpu_count()} cores"
        )
        sessions: dict[str, Any] = {}
        for page, who, path in PAGES:
            names = who(clients)
            for name in names:
                if name not in sessions:
                    sessions[name] = login(base, name)
            openers = [sessions[name] for name in names]
            figures[page] = {}
            for name, pause in (("paced", 1.0), ("no pause", 0.0)):
                hammer(base, openers, min(seconds, 3), pause, path)  # warm: caches, connections
                ms, errors = hammer(base, openers, seconds, pause, path)
                figures[page][name] = (len(ms) / seconds, percentile(ms, 95))
                print(
                    f"  {page:<26}{name + (' (1 s between pages)' if pause else ''):<22}"
                    f"{len(ms):6d} requests ({len(ms) / seconds:5.0f}/s), "
                    f"errors {errors}; p50 / p95 / p99 {percentile(ms, 50):6.1f} / "
                    f"{percentile(ms, 95):6.1f} / {percentile(ms, 99):6.1f} ms"
                )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()
        listener.close()
    return figures


def dashboard_before_after(clients: int, seconds: float, before: str | None) -> None:
    runs = {}
    if before:
        with tempfile.TemporaryDirectory(prefix="vigil-before-") as tmp:
            worktree = Path(tmp) / "code"
            git = ["git", "-C", str(ROOT)]
            added = subprocess.run(
                [*git, "worktree", "add", "--detach", "--quiet", str(worktree), before],
                capture_output=True,
                text=True,
            )
            if added.returncode:
                sys.exit(f"--before {before}: no such revision here ({added.stderr.strip()})")
            try:
                runs["before"] = dashboard_load(clients, seconds, worktree, f"({before[:10]})")
            finally:
                subprocess.run([*git, "worktree", "remove", "--force", str(worktree)], check=True)
    runs["now"] = dashboard_load(clients, seconds, ROOT, "(this code)")
    print(
        "  targets: a rep's dashboard paced p95 < 60 ms, no pause >= 150 pages/s; a manager's"
        " >= 100 pages/s; Settings no slower than a rep's dashboard"
    )
    if not before:
        return
    print(
        f"  {'before -> after (' + before[:10] + ')':<36}{'no pause, pages/s':>26}"
        f"{'no pause, p95 ms':>24}{'paced, p95 ms':>22}"
    )
    for page, _, _ in PAGES:
        old, new = runs["before"][page], runs["now"][page]
        (b_rate, b_p95), (n_rate, n_p95) = old["no pause"], new["no pause"]
        (_, b_paced), (_, n_paced) = old["paced"], new["paced"]
        print(
            f"  {page:<36}{b_rate:7.0f} -> {n_rate:4.0f} ({n_rate / b_rate:4.2f}x)"
            f"{b_p95:8.0f} -> {n_p95:4.0f} ({n_p95 / b_p95:4.2f}x)"
            f"{b_paced:6.0f} -> {n_paced:4.0f} ({n_paced / b_paced:4.2f}x)"
        )


def hammer(
    base: str, openers: list, seconds: float, pause: float, path: str = "/"
) -> tuple[list[float], int]:
    """Each opener's session asks for `path` in a loop for `seconds`, waiting `pause`
    between pages. The clients are coroutines writing raw HTTP/1.1 on one thread: about half a
    millisecond of CPU a page, where urllib in threads took 7.7 ms and competed with the
    server for the same two cores."""
    return asyncio.run(_hammer(base, openers, seconds, pause, path))


async def _hammer(base, openers, seconds, pause, path) -> tuple[list[float], int]:
    host, port = urllib.parse.urlsplit(base).hostname, urllib.parse.urlsplit(base).port
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def client(opener, offset: float) -> None:
        nonlocal errors
        cookies = "; ".join(f"{c.name}={c.value}" for c in opener.cookie_jar)
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookies}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        await asyncio.sleep(offset)  # spread the paced clients over the first second
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(request)
                response = await reader.read()
                writer.close()
            except OSError:
                errors += 1
                continue
            if not response.startswith(b"HTTP/1.1 200"):
                errors += 1
                continue
            latencies.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(pause)

    await asyncio.gather(*(client(o, pause * i / len(openers)) for i, o in enumerate(openers)))
    return latencies, errors


def login(base: str, username: str):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": username, "password": PASSWORD}
    ).encode()
    request = urllib.request.Request(base + "/login/", data=data, headers={"Referer": base})
    opener.open(request).read()
    opener.cookie_jar = jar
    return opener


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--before",
        metavar="REV",
        help="also time the dashboard on the code of this git revision, same data, same run",
    )
    parser.add_argument(
        "--dashboard-only",
        action="store_true",
        help="reuse the database of an earlier run and time only the dashboard",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the data of an earlier run's build (same --rows) instead of building it",
    )
    parser.add_argument(
        "--jobs-only",
        action="store_true",
        help="time the jobs and skip the pages (the ten-million-row run)",
    )
    parser.add_argument(
        "--database",
        default="vigil_bench_notifications",
        help="the database to drop and rebuild (on the server of DATABASE_URL)",
    )
    args = parser.parse_args()
    if args.dashboard_only:
        setup(args.database, fresh=False)
        sql("VACUUM ANALYZE")  # new indexes since the data was built: make them index-only
        dashboard_before_after(args.clients, args.seconds, args.before)
        return
    setup(args.database, fresh=not args.reuse)
    as_of = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
    results: dict[str, float] = {}
    if not args.reuse:
        with timed(results, "build"):
            build(args.rows, as_of)
        print(
            f"data                  {args.rows:,} tasks, opportunities, events, invoices; "
            f"{args.rows // 10:,} dispatches; built in {results['build']:.0f} s"
        )
    daily(as_of, results)
    results["peak_mb"] = peak_rss_mb()
    print(f"  peak memory         {results['peak_mb']:8.0f} MB (this process, the job's included)")
    record_and_compare(
        "notifications",
        args.rows,
        results,
        [("job", "job"), ("hand", "hand-written SQL"), ("peak_mb", "peak memory (MB)")],
    )
    expired_scan(as_of, results)
    if args.jobs_only:
        return
    sql("VACUUM ANALYZE notifications_notification")  # as autovacuum would after the job
    dashboard_before_after(args.clients, args.seconds, args.before)
    print(f"peak memory (this process) {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
