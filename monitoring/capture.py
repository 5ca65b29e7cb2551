"""Errors captured as they happen. `ErrorEventHandler` (in settings.LOGGING, on the root logger of
the web, Celery workers, Beat and management commands) stores every ERROR record, and, through
sys.excepthook and threading.excepthook, every unhandled exception, as an ErrorEvent: one upsert
per occurrence, grouped by fingerprint.

Where it writes: the caller's own database connection, in a savepoint. Every edge that reports a
failure (the job engine's runner, Django's request handler, Celery's task tracer) logs it after
the failed work's transaction has rolled back, so those events commit. An ERROR logged inside a
transaction that later rolls back goes with it, as any other row of that unit would; whatever
caused the rollback is captured at the edge. A second connection would have outlived such a
rollback, but on SQLite it waits for the caller's own write lock (then "database is locked"),
under Celery's prefork it must not cross a fork, and in tests it commits rows outside the test's
transaction.

It never breaks the code that logged: a record logged while one is being stored, a broken
transaction, an unreachable database or a failed write all end in one line on stderr. After a
connection failure it leaves the database alone for FALLBACK_PAUSE seconds, so an outage costs
no connection attempt per record.
"""

import hashlib
import logging
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections, transaction
from django.utils import timezone

from monitoring import scrubbing
from monitoring.context import exception_of, where

FALLBACK_PAUSE = 30.0
MAX_TEXT = 20_000
ROOT = str(Path(settings.BASE_DIR).resolve())
# runserver logs each 500 once more as an access line; django.request has it, with its exception.
IGNORED_LOGGERS = {"django.server"}

_state = threading.local()
_paused_until = 0.0


@dataclass
class Occurrence:
    """One ERROR record or unhandled exception, described for storing."""

    fingerprint: str
    title: str
    exception_type: str
    logger: str
    level: str
    location: str
    message: str
    traceback: str
    at: datetime
    context: dict[str, Any] = field(default_factory=dict)


class ErrorEventHandler(logging.Handler):
    def __init__(self, level: int | str = logging.ERROR) -> None:
        super().__init__(level)
        install_excepthooks(self)

    def emit(self, record: logging.LogRecord) -> None:
        global _paused_until
        if record.name in IGNORED_LOGGERS:
            return
        if getattr(_state, "storing", False):
            fallback(record, "logged while an error event was being stored")
            return
        if time.monotonic() < _paused_until:
            fallback(record, "the database failed a moment ago")
            return
        _state.storing = True
        try:
            store(describe(record))
        except (OperationalError, InterfaceError) as exc:
            _paused_until = time.monotonic() + FALLBACK_PAUSE
            fallback(record, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - the code that logged must go on
            fallback(record, f"{type(exc).__name__}: {exc}")
        finally:
            _state.storing = False


def fallback(record: logging.LogRecord, why: str) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a record with bad arguments is still worth a line
        message = str(record.msg)
    first = " ".join(why.split())[:300]
    sys.stderr.write(f"vigil: error event not stored ({first}): {record.name}: {message}\n")


# --- Unhandled exceptions ----------------------------------------------------------------------

_hooked: list[ErrorEventHandler] = []


def install_excepthooks(handler: ErrorEventHandler) -> None:
    """Send unhandled exceptions (a management command's, a thread's) to the latest handler
    configured, then to the hook that was there before, which prints them."""
    if _hooked:
        _hooked[0] = handler
        return
    _hooked.append(handler)
    previous, previous_thread = sys.excepthook, threading.excepthook

    def excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None):
        capture_unhandled(exc)
        previous(kind, exc, tb)

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            capture_unhandled(args.exc_value)
        previous_thread(args)

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook


def capture_unhandled(exc: BaseException) -> None:
    if not isinstance(exc, Exception):
        return  # KeyboardInterrupt, SystemExit: how processes stop, not bugs
    record = logging.LogRecord(
        "unhandled", logging.CRITICAL, "", 0, "Unhandled %s", (type(exc).__name__,), None
    )
    record.exc_info = (type(exc), exc, exc.__traceback__)
    _hooked[0].handle(record)


# --- Describing an occurrence ------------------------------------------------------------------


def _relative(filename: str) -> str:
    return filename[len(ROOT) + 1 :] if filename.startswith(ROOT + "/") else filename


def _ours(filename: str) -> bool:
    return filename.startswith(ROOT + "/") and "site-packages" not in filename


def _type_name(exc: BaseException) -> str:
    kind = type(exc)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _grouping(record: logging.LogRecord, exc: BaseException | None) -> tuple[str, str, str]:
    """What groups an occurrence, where it happened and its title."""
    if exc is None:
        where = f"{_relative(record.pathname)}:{record.lineno} in {record.funcName}"
        return f"{record.name}|{record.msg}", where, f"{record.name}: {record.msg}"
    frames = traceback.extract_tb(exc.__traceback__)
    inner = next((f for f in reversed(frames) if _ours(f.filename)), frames[-1] if frames else None)
    if inner is None:  # logged, never raised
        return f"{_type_name(exc)}|", "", type(exc).__name__
    path = _relative(inner.filename)
    # The source line, not its number: an edit elsewhere in the file keeps the group.
    key = f"{_type_name(exc)}|{path}|{inner.name}|{(inner.line or '').strip()}"
    title = f"{type(exc).__name__} in {inner.name} ({path})"
    return key, f"{path}:{inner.lineno} in {inner.name}", title


def describe(record: logging.LogRecord) -> Occurrence:
    context, secrets = where(record)
    secrets |= scrubbing.settings_secrets()
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a record with bad arguments keeps its template
        message = str(record.msg)
    exc = exception_of(record)
    key, location, title = _grouping(record, exc)
    text = record.stack_info or ""
    if exc is not None:
        text = f"{message}\n\n{''.join(traceback.format_exception(exc))}"
        message = f"{type(exc).__name__}: {exc}"
    return Occurrence(
        fingerprint=hashlib.sha256(key.encode()).hexdigest(),
        title=scrubbing.redact(title, secrets)[:300],
        exception_type=_type_name(exc) if exc is not None else "",
        logger=record.name[:200],
        level=record.levelname[:16],
        location=location[:300],
        message=scrubbing.redact(message, secrets)[:MAX_TEXT],
        # The end of a long traceback is where it went wrong.
        traceback=scrubbing.redact(text, secrets)[-MAX_TEXT:],
        at=datetime.fromtimestamp(record.created, tz=UTC),
        context=scrubbing.redact_all(context, secrets),
    )


# --- Storing -----------------------------------------------------------------------------------


def event_table() -> str:
    from monitoring.models import ErrorEvent  # not at import: logging is set up before models

    return ErrorEvent._meta.db_table


def upsert_statement(table: str, columns: list[str]) -> str:
    # The same SQL on PostgreSQL and SQLite. Every right-hand side reads the row as it was.
    return f"""
        INSERT INTO {table} ({", ".join(columns)}, count, day_count, previous_day_count, status,
            regression)
        VALUES ({", ".join(["%s"] * len(columns))}, 1, 1, 0, 'open', FALSE)
        ON CONFLICT (fingerprint) DO UPDATE SET
            title = excluded.title,
            logger = excluded.logger,
            level = excluded.level,
            location = excluded.location,
            message = excluded.message,
            traceback = excluded.traceback,
            context = excluded.context,
            count = {table}.count + 1,
            last_seen = excluded.last_seen,
            previous_day = CASE WHEN {table}.day = excluded.day
                THEN {table}.previous_day ELSE {table}.day END,
            previous_day_count = CASE WHEN {table}.day = excluded.day
                THEN {table}.previous_day_count ELSE {table}.day_count END,
            day_count = CASE WHEN {table}.day = excluded.day
                THEN {table}.day_count + 1 ELSE 1 END,
            day = excluded.day,
            regression = CASE WHEN {table}.status = 'resolved'
                THEN TRUE ELSE {table}.regression END,
            reopened_at = CASE WHEN {table}.status = 'resolved'
                THEN excluded.last_seen ELSE {table}.reopened_at END,
            status = 'open'
    """  # noqa: S608 - names are the model's, every value a parameter


def store(occurrence: Occurrence) -> None:
    if not apps.ready:
        raise RuntimeError("Django is not set up yet")
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.in_atomic_block and connection.needs_rollback:
        raise RuntimeError("the transaction it was logged in is broken")
    o = occurrence
    values = {
        "fingerprint": o.fingerprint,
        "title": o.title,
        "exception_type": o.exception_type,
        "logger": o.logger,
        "level": o.level,
        "location": o.location,
        "message": o.message,
        "traceback": o.traceback,
        "context": o.context,
        "first_seen": o.at,
        "last_seen": o.at,
        "day": timezone.localdate(o.at),
    }
    from monitoring.models import ErrorEvent

    fields = {f.name: f for f in ErrorEvent._meta.concrete_fields}
    params = [fields[name].get_db_prep_save(v, connection) for name, v in values.items()]
    # A savepoint: a failed write leaves the caller's transaction as it was.
    with transaction.atomic(using=DEFAULT_DB_ALIAS), connection.cursor() as cursor:
        cursor.execute(upsert_statement(event_table(), list(values)), params)
