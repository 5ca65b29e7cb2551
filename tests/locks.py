"""Row locks seen from outside: another transaction holds what a statement wrote until the
block ends (then commits), while this one waits at most LOCK_TIMEOUT for anything."""

from contextlib import contextmanager

from django.db import connection, connections

LOCK_TIMEOUT = "200ms"


@contextmanager
def held_by_another_transaction(sql: str, params: list):
    """Run `sql` in another transaction, left open for the block; this connection gives up
    after LOCK_TIMEOUT when it would wait (OperationalError "lock timeout")."""
    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute(sql, params)
        with connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
            try:
                yield
            finally:
                cursor.execute("RESET lock_timeout")
        other.commit()
    finally:
        other.close()
