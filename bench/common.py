"""Shared set-up for benchmarks: a separate PostgreSQL database, migrated, filled by SQL."""

import os
import resource
import sys
import time
from contextlib import contextmanager

import django


def setup(database: str, *, fresh: bool = True) -> None:
    """Point Django at a fresh `database` (or, with fresh=False, the one already there) on the
    PostgreSQL server of DATABASE_URL (default: localhost) and migrate it. Refuses SQLite: the
    figures are for the production database."""
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


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]
