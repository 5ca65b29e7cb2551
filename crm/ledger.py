"""What the JobRun ledger says about each job: its last run, how that run stands and when the
job runs next. One reading for `manage.py jobs` and Admin → Periodic tasks."""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule

from crm import locks, slots
from crm.models import JobRun

NEVER = "never"


def latest_run(field: str, job_field: str = "name") -> Subquery:
    """`field` of the latest run (started last, then created last) of the job the outer query's
    `job_field` names, as a subquery: a page of jobs reads all their last runs in one query."""
    runs = JobRun.objects.filter(job=OuterRef(job_field)).order_by("-started_at", "-pk")
    return Subquery(runs.values(field)[:1])


def last_runs(names: Iterable[str]) -> dict[str, JobRun]:
    """The latest run of each named job that ran, in one query."""
    runs = JobRun.objects.filter(job__in=list(names), pk=latest_run("pk", "job"))
    return {run.job: run for run in runs}


def status(job: str, state: str | None, now: datetime) -> str:
    """How the last run stands; "running" only while its runner still holds the job's lock."""
    if state is None:
        return "-"
    if state == JobRun.Status.RUNNING and not locks.is_held(job, now):
        return "abandoned (its runner is gone)"
    return state


def next_run(expression: str, tz: str, enabled: bool, now: datetime) -> datetime | None:
    return slots.next_slot(expression, tz, now) if enabled else None


def local(moment: datetime | None) -> str:
    if moment is None:
        return NEVER
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")


def crontab_expression(crontab: CrontabSchedule) -> str:
    c = crontab
    return f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"
