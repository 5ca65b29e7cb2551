"""Shared set-up for benchmarks: a separate PostgreSQL database, migrated, filled by SQL."""

import json
import os
import resource
import sys
import time
from contextlib import contextmanager

import django


def _server():
    """DATABASE_URL's settings, and an autocommit connection to its server's "postgres"
    database (where databases are created and dropped)."""
    import dj_database_url
    import psycopg2

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/vigil")
    config = dj_database_url.parse(base)
    if "postgresql" not in config["ENGINE"]:
        sys.exit("benchmarks run on PostgreSQL: set DATABASE_URL=postgres://...")
    admin = psycopg2.connect(
        dbname="postgres",
        user=config["USER"],
        password=config["PASSWORD"] or None,
        host=config["HOST"],
        port=config["PORT"] or 5432,
    )
    admin.autocommit = True
    return config, admin


def on_server(*statements: str) -> None:
    """Run `statements` (CREATE or DROP DATABASE …) on the server of DATABASE_URL."""
    _, admin = _server()
    try:
        with admin.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        admin.close()


def setup(database: str, *, fresh: bool = True) -> None:
    """Point Django at a fresh `database` (or, with fresh=False, the one already there) on the
    PostgreSQL server of DATABASE_URL (default: localhost) and migrate it. Refuses SQLite: the
    figures are for the production database."""
    config, admin = _server()
    with admin.cursor() as cursor:
        if fresh:
            cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{database}"')
        else:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
            if cursor.fetchone() is None:
                sys.exit(f"no database {database} to reuse: run once without --dashboard-only")
    admin.close()
    host = config["HOST"] or "127.0.0.1"
    auth = config["USER"] + (f":{config['PASSWORD']}" if config["PASSWORD"] else "")
    os.environ["DATABASE_URL"] = f"postgres://{auth}@{host}:{config['PORT'] or 5432}/{database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


@contextmanager
def timed(results: dict, name: str):
    start = time.perf_counter()
    yield
    results[name] = time.perf_counter() - start


def sql(statement: str, params=None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds(group: int) -> tuple[float, float]:
    """CPU seconds used so far (user + system, Linux's /proc) by the processes of process group
    `group` (a server started in a session of its own) and by PostgreSQL's processes on this
    machine: where a page's time goes, the app or the database."""
    app = database = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                name, fields = stat.read().rsplit(")", 1)
        except OSError:  # ended meanwhile
            continue
        fields = fields.split()
        # utime, stime, and of the children it has waited for (cutime, cstime): PostgreSQL's
        # parallel workers end with their query, and their time then goes to the postmaster.
        used = sum(int(field) for field in fields[11:15]) / tick
        if int(fields[2]) == group:
            app += used
        elif name.endswith("(postgres"):
            database += used
    return app, database


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


RECORDS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "var", "bench")


def record_and_compare(name: str, size: int, figures: dict, lines: list[tuple[str, str]]) -> None:
    """Keep this run's `figures` in var/bench/<name>-<size>.json and, above a million rows,
    print each of `lines` (key, label) against the last run at 1,000,000: the time may grow
    at most 1.1x as fast as the rows (#21 §4: 10M in at most 11x the 1M time); memory flat."""

    os.makedirs(RECORDS, exist_ok=True)
    with open(os.path.join(RECORDS, f"{name}-{size}.json"), "w") as out:
        json.dump({"size": size, **figures}, out, indent=1)
    base = os.path.join(RECORDS, f"{name}-1000000.json")
    if size <= 1_000_000 or not os.path.exists(base):
        return
    with open(base) as inp:
        one = json.load(inp)
    times = size / 1_000_000
    print(f"  against the last run at 1,000,000 ({times:g}x the rows):")
    for key, label in lines:
        target = {"peak_mb": "flat", "job": f"target <= {1.1 * times:g}x"}.get(key, "")
        print(
            f"    {label:18s} {one[key]:9.2f} -> {figures[key]:9.2f}  "
            f"({figures[key] / one[key]:6.2f}x) {target}"
        )
