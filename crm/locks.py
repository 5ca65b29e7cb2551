"""One lease per job, shared by scheduled, catch-up and manual runs, on any database.

Acquiring is a conditional UPDATE that succeeds only when the lease is free or expired, so of
two racing runners exactly one sees one row changed. The holder renews the lease from a
background thread while the job runs; if the holder is killed, renewals stop and the lease
runs out after VIGIL_JOB_LEASE_SECONDS, freeing the job without anyone cleaning up.
"""

import logging
import threading
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import connections
from django.db.models import Q
from django.utils import timezone

from crm.models import JobLock

log = logging.getLogger(__name__)


class JobLocked(Exception):
    def __init__(self, job: str, lock: JobLock | None) -> None:
        if lock and lock.holder:
            detail = f"held by {lock.holder} since {lock.acquired_at:%Y-%m-%d %H:%M:%S %Z}"
        else:
            detail = "held by another runner"
        super().__init__(f"job {job!r} is already running ({detail}); try again when it ends")


def lease() -> timedelta:
    return timedelta(seconds=settings.VIGIL_JOB_LEASE_SECONDS)


def acquire(job: str, holder: str) -> bool:
    now = timezone.now()
    JobLock.objects.bulk_create([JobLock(job=job)], ignore_conflicts=True)
    free = Q(holder="") | Q(expires_at__lt=now)
    taken = JobLock.objects.filter(free, job=job).update(
        holder=holder, acquired_at=now, expires_at=now + lease()
    )
    return taken == 1


def renew(job: str, holder: str) -> bool:
    expires = timezone.now() + lease()
    return JobLock.objects.filter(job=job, holder=holder).update(expires_at=expires) == 1


def release(job: str, holder: str) -> None:
    JobLock.objects.filter(job=job, holder=holder).update(holder="", expires_at=None)


@contextmanager
def held(job: str, holder: str):
    """Hold the job's lease for the duration of the block, or raise JobLocked."""
    if not acquire(job, holder):
        raise JobLocked(job, JobLock.objects.filter(job=job).first())
    stop = threading.Event()
    keeper = threading.Thread(
        target=_keep_renewing, args=(job, holder, stop), name=f"lease-{job}", daemon=True
    )
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join()
        release(job, holder)


def _keep_renewing(job: str, holder: str, stop: threading.Event) -> None:
    interval = lease().total_seconds() / 3
    try:
        while not stop.wait(interval):
            if not renew(job, holder):
                log.warning("job %s: lease lost by %s", job, holder)
    finally:
        connections.close_all()
