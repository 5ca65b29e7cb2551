"""The dead-man switch: jobs whose schedule called for a run that never succeeded.

Nothing logs an error when Beat or every worker is stopped; the only sign is a success that
does not come. Each job's schedule is read from django-celery-beat (where administrators change
it). A job is overdue when the latest slot its crontab called for, at least a margin ago, has no
successful scheduled run: its last success is older than one period plus the margin. A job that
never ran at all is overdue as soon as one slot has passed (Beat's start-up catch-up runs every
job once, so a running Beat leaves none that never ran).

The margin lets a run Beat has just sent finish: a quarter of the job's period, at least
MIN_MARGIN, at most MAX_MARGIN (a daily 06:00 job is overdue at 07:00, when the report runs).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import OuterRef, QuerySet, Subquery
from django_celery_beat.models import PeriodicTask

from crm import registry, slots
from crm.models import JobRun

MIN_MARGIN = timedelta(minutes=10)
MAX_MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class Schedule:
    job: str
    expression: str
    tz: str
    task_id: int | None  # its PeriodicTask; None when Beat does not know the job
    task_enabled: bool
    last_success: datetime | None  # the latest slot a scheduled run succeeded for

    @property
    def enabled(self) -> bool:
        return self.task_id is not None and self.task_enabled

    @property
    def disabled(self) -> bool:
        return self.task_id is not None and not self.task_enabled


@dataclass(frozen=True)
class Overdue:
    schedule: Schedule
    expected: datetime  # the slot that should have succeeded


def period(expression: str, tz: str, now: datetime) -> timedelta:
    """Time between the latest slot at `now` and the one before it."""
    latest = slots.latest_slot(expression, tz, now)
    return latest - slots.latest_slot(expression, tz, latest - timedelta(seconds=1))


def margin(expression: str, tz: str, now: datetime) -> timedelta:
    return min(max(period(expression, tz, now) / 4, MIN_MARGIN), MAX_MARGIN)


def job_tasks() -> QuerySet[PeriodicTask]:
    return PeriodicTask.objects.select_related("crontab").filter(
        name__in=[j.name for j in registry.all_jobs()]
    )


def schedules() -> list[Schedule]:
    """Every registered job's schedule, as Beat has it, with its last success (one query). A
    job Beat has no task for is listed with its default schedule and no task."""
    last_success = (
        JobRun.objects.filter(
            job=OuterRef("name"),
            trigger__in=JobRun.SCHEDULED_TRIGGERS,
            status=JobRun.Status.SUCCEEDED,
        )
        .order_by("-slot")
        .values("slot")[:1]
    )
    tasks = {t.name: t for t in job_tasks().annotate(last_success=Subquery(last_success))}
    found = []
    for job in registry.all_jobs():
        task = tasks.get(job.name)
        c = task.crontab if task else None
        found.append(
            Schedule(
                job=job.name,
                expression=(
                    f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"
                    if c
                    else job.schedule
                ),
                tz=str(c.timezone) if c else settings.TIME_ZONE,
                task_id=task.pk if task else None,
                task_enabled=bool(task and task.enabled),
                last_success=getattr(task, "last_success", None),
            )
        )
    return found


def overdue(schedule: Schedule, now: datetime) -> Overdue | None:
    if not schedule.enabled:
        return None  # disabled jobs are reported as such
    expected = slots.latest_slot(
        schedule.expression, schedule.tz, now - margin(schedule.expression, schedule.tz, now)
    )
    if schedule.last_success is not None and schedule.last_success >= expected:
        return None
    return Overdue(schedule, expected)
