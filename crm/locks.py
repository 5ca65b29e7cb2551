"""One lock per job, shared by scheduled, catch-up and manual runs.

On PostgreSQL the lock is a session-level advisory lock taken on a connection the runner opens
for it alone. The database drops it the moment that connection ends, so a runner killed with
SIGKILL frees its job at once: nobody waits for a lease to run out.

On SQLite (the embedded default, one host) it is a lease: a conditional UPDATE that succeeds
only when the lease is free or expired, renewed by a thread while the job runs. A holder on this
host whose process is gone is replaced at once; any other holder, when its lease runs out.

Either way the JobLock row says who holds the job and since when, so a refused runner can say
whether that process still lives. A run that loses its lock stops: the next query the job makes
raises LockLost, and its open transaction rolls back.
"""

import logging
import os
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, Error, OperationalError, connection, connections
from django.db.models import Q
from django.utils import timezone

from crm.models import JobLock

log = logging.getLogger(__name__)

# First key of every advisory lock Vigil takes ("VIGL"); the second is the job name's CRC-32.
ADVISORY_NAMESPACE = 0x5647_494C
# How long a runner waits for the lock of a holder on this host whose process is gone: the
# server ends that session as soon as it reads the closed socket.
DEAD_HOLDER_WAIT_MS = 2000
# The lock of a job as pg_locks lists it (its two keys as unsigned oids).
ADVISORY_HELD = (
    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND classid = %s::oid AND objid = %s::oid AND objsubid = 2"
)


def advisory_key(job: str) -> tuple[int, int]:
    return ADVISORY_NAMESPACE, zlib.crc32(job.encode()) - 2**31


class JobLocked(Exception):
    def __init__(self, job: str, lock: JobLock | None) -> None:
        super().__init__(
            f"job {job!r} is already running ({describe(lock)}); try again when it ends"
        )


class LockLost(RuntimeError):
    """The run no longer holds its job's lock; it must not write anything more."""


def lease() -> timedelta:
    return timedelta(seconds=settings.VIGIL_JOB_LEASE_SECONDS)


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def holder_alive(holder: str) -> bool | None:
    """Whether the process named in `holder` still runs: None when it is on another host."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def describe(lock: JobLock | None) -> str:
    if lock is None or not lock.holder:
        return "held by another runner"
    since = timezone.localtime(lock.acquired_at) if lock.acquired_at else None
    parts = [f"held by {lock.holder}" + (f" since {since:%Y-%m-%d %H:%M:%S %Z}" if since else "")]
    alive = holder_alive(lock.holder)
    if alive is None:
        parts.append("on another host")
    else:
        parts.append("that process is alive" if alive else "that process is no longer running")
    if lock.expires_at:
        parts.append(f"its lease expires at {timezone.localtime(lock.expires_at):%H:%M:%S %Z}")
    else:
        parts.append("the lock ends with that process's database connection")
    return "; ".join(parts)


@dataclass
class Held:
    """What a runner holds while its job runs."""

    job: str
    holder: str
    lost: threading.Event = field(default_factory=threading.Event)
    reason: str = ""

    def lose(self, reason: str) -> None:
        self.reason = reason
        self.lost.set()
        log.error("job %s: lost its lock (%s); stopping it", self.job, reason)

    def guard(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any):
        """A connection.execute_wrapper: no query once the lock is lost."""
        if self.lost.is_set():
            raise LockLost(f"job {self.job!r} lost its lock ({self.reason}) and was stopped")
        return execute(sql, params, many, context)


class LeaseLock:
    """The lease, for databases without advisory locks."""

    def __init__(self, job: str, holder: str) -> None:
        self.job, self.holder = job, holder

    def acquire(self) -> bool:
        now = timezone.now()
        JobLock.objects.bulk_create([JobLock(job=self.job)], ignore_conflicts=True)
        free = Q(holder="") | Q(expires_at__lt=now)
        current = JobLock.objects.filter(job=self.job).values_list("holder", flat=True).first()
        if current and holder_alive(current) is False:
            free |= Q(holder=current)  # its process is gone: no need to wait for the lease
        taken = JobLock.objects.filter(free, job=self.job).update(
            holder=self.holder, acquired_at=now, expires_at=now + lease()
        )
        return taken == 1

    def check(self) -> str:
        """Renew the lease; the reason it is lost, or "" while it is held."""
        expires = timezone.now() + lease()
        try:
            renewed = JobLock.objects.filter(job=self.job, holder=self.holder).update(
                expires_at=expires
            )
        except DatabaseError as exc:  # busy database: try again at the next renewal
            log.warning("job %s: could not renew its lease: %s", self.job, exc)
            return ""
        return "" if renewed else "its lease expired and another runner took the job"

    def interrupt(self) -> None:
        """Nothing to cancel: the guard stops the job's next query."""

    def close(self) -> None:
        """Nothing to close: the lease is a row."""

    def release(self) -> None:
        JobLock.objects.filter(job=self.job, holder=self.holder).update(holder="", expires_at=None)


class AdvisoryLock:
    """A PostgreSQL session-level advisory lock on a connection of its own."""

    def __init__(self, job: str, holder: str) -> None:
        self.job, self.holder = job, holder
        self.key = advisory_key(job)
        self.conn = connection.copy()
        self.conn.inc_thread_sharing()  # the keeper thread checks it
        self.worker_pid = 0

    def _one(self, sql: str, params: tuple = ()) -> Any:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]

    def _wait_for_lock(self, milliseconds: int) -> bool:
        """Block until the lock is free, for at most `milliseconds`: the server wakes us."""
        self._one("SELECT set_config('lock_timeout', %s, false)", (f"{milliseconds}ms",))
        try:
            self._one("SELECT pg_advisory_lock(%s, %s)::text", self.key)
        except OperationalError:  # lock_timeout: still held
            return False
        finally:
            self._one("SELECT set_config('lock_timeout', '0', false)")
        return True

    def acquire(self, wait_ms: int = 0) -> bool:
        """Take the lock at once, or within `wait_ms`."""
        if wait_ms:
            taken = self._wait_for_lock(wait_ms)
        else:
            taken = self._one("SELECT pg_try_advisory_lock(%s, %s)", self.key)
        if not taken:
            return False
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.worker_pid = cursor.fetchone()[0]
        JobLock.objects.bulk_create([JobLock(job=self.job)], ignore_conflicts=True)
        JobLock.objects.filter(job=self.job).update(
            holder=self.holder, acquired_at=timezone.now(), expires_at=None
        )
        return True

    def check(self) -> str:
        try:
            held = self._one(
                f"SELECT EXISTS ({ADVISORY_HELD} AND pid = pg_backend_pid())",
                (self.key[0], self.key[1] % 2**32),
            )
        except Error as exc:  # InterfaceError too: the connection is gone
            return f"its lock connection broke: {type(exc).__name__}"
        return "" if held else "its advisory lock is gone"

    def interrupt(self) -> None:
        """Cancel the statement the job is running now, so it stops at once."""
        other = connection.copy()
        try:
            with other.cursor() as cursor:
                cursor.execute("SELECT pg_cancel_backend(%s)", [self.worker_pid])
        except Error as exc:
            log.warning("job %s: could not cancel its running statement: %s", self.job, exc)
        finally:
            other.close()

    def close(self) -> None:
        """Closing the connection lets go of the lock, if it is still held."""
        with suppress(Error):
            self.conn.close()

    def release(self) -> None:
        with suppress(Error):  # a broken connection has let go of the lock already
            self._one("SELECT pg_advisory_unlock(%s, %s)", self.key)
        self.close()
        self.conn.dec_thread_sharing()
        JobLock.objects.filter(job=self.job, holder=self.holder).update(holder="")


def _lock_for(job: str, holder: str) -> LeaseLock | AdvisoryLock:
    return (
        AdvisoryLock(job, holder) if connection.vendor == "postgresql" else LeaseLock(job, holder)
    )


def _refused(job: str) -> JobLocked:
    return JobLocked(job, JobLock.objects.filter(job=job).first())


def _acquire(lock: LeaseLock | AdvisoryLock) -> None:
    if lock.acquire():
        return
    # A holder on this host that was just killed may keep its database session a moment
    # longer, until the server notices the closed socket: wait for that, not for a lease.
    current = JobLock.objects.filter(job=lock.job).values_list("holder", flat=True).first() or ""
    dead = bool(current) and holder_alive(current) is False
    if dead and isinstance(lock, AdvisoryLock) and lock.acquire(wait_ms=DEAD_HOLDER_WAIT_MS):
        return
    lock.close()
    raise _refused(lock.job)


@contextmanager
def held(job: str, holder: str) -> Iterator[Held]:
    """Hold the job's lock for the duration of the block, or raise JobLocked. The block should
    run its queries under `connection.execute_wrapper(held.guard)`."""
    lock = _lock_for(job, holder)
    _acquire(lock)
    state = Held(job, holder)
    stop = threading.Event()
    keeper = threading.Thread(
        target=_keep, args=(lock, state, stop), name=f"lock-{job}", daemon=True
    )
    keeper.start()
    try:
        yield state
    finally:
        stop.set()
        keeper.join()
        lock.release()


def _keep(lock: LeaseLock | AdvisoryLock, state: Held, stop: threading.Event) -> None:
    interval = lease().total_seconds() / 3
    try:
        while not stop.wait(interval):
            reason = lock.check()
            if reason:
                state.lose(reason)
                lock.interrupt()
                return
    finally:
        connections.close_all()


def is_held(job: str, now: datetime) -> bool:
    """Whether some live runner holds the job now (for `manage.py jobs` and the admin)."""
    if connection.vendor == "postgresql":
        first, second = advisory_key(job)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT EXISTS ({ADVISORY_HELD} AND database ="  # noqa: S608 - a constant
                " (SELECT oid FROM pg_database WHERE datname = current_database()))",
                (first, second % 2**32),
            )
            return bool(cursor.fetchone()[0])
    lock = JobLock.objects.filter(job=job).first()
    return bool(
        lock
        and lock.holder
        and lock.expires_at
        and lock.expires_at > now
        and holder_alive(lock.holder) is not False
    )
