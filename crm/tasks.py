"""Celery tasks: thin wrappers around crm.runner, taking only JSON-safe arguments."""

from datetime import datetime

from celery import shared_task
from django.utils import timezone

from crm import runner
from crm.locks import JobLocked
from crm.models import JobRun
from crm.schedules import CATCH_UP_TASK

LOCKED_RETRY_SECONDS = 60


@shared_task(bind=True, name="crm.run_scheduled_job", max_retries=30)
def run_scheduled_job(self, name: str, trigger: str = JobRun.Trigger.SCHEDULE) -> int | None:
    try:
        run = runner.run_scheduled(name, timezone.now(), trigger=trigger)
    except JobLocked as exc:
        raise self.retry(countdown=LOCKED_RETRY_SECONDS, exc=exc) from None
    return run.pk if run else None


@shared_task(bind=True, name="crm.run_job_now", max_retries=30)
def run_job_now(self, name: str, as_of: str, trigger: str = JobRun.Trigger.ADMIN) -> int:
    try:
        run = runner.run_job(name, datetime.fromisoformat(as_of), trigger=trigger)
    except JobLocked as exc:
        raise self.retry(countdown=LOCKED_RETRY_SECONDS, exc=exc) from None
    return run.pk


@shared_task(name=CATCH_UP_TASK)
def catch_up() -> list[str]:
    """Beat's periodic look for slots left unrun (their runner was killed, their message
    lost): each is queued once more. Cheap when there is none: a few indexed reads a job."""
    names = runner.missed_jobs(timezone.now())
    for name in names:
        run_scheduled_job.delay(name, trigger=JobRun.Trigger.CATCHUP)
    return names
