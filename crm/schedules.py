"""Writing the jobs' default schedules into django-celery-beat.

Idempotent, and respectful of administrators: a job's PeriodicTask is created with its default
crontab the first time; after that the sync only keeps the task pointing at the engine. The time,
days and enabled flag an administrator set in the admin are never overwritten, and nothing is
ever deleted.
"""

import json

from django.conf import settings
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from crm import registry

TASK = "crm.run_scheduled_job"
CATCH_UP = "catch_up_missed_slots"  # the PeriodicTask of crm.tasks.catch_up
CATCH_UP_TASK = "crm.catch_up"
CATCH_UP_MINUTES = 5


def _crontab(expression: str, tz: str) -> CrontabSchedule:
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split()
    fields = dict(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone=tz,
    )
    return CrontabSchedule.objects.filter(**fields).first() or CrontabSchedule.objects.create(
        **fields
    )


def sync_schedules() -> dict[str, int]:
    created = repointed = 0
    jobs = registry.all_jobs()
    tasks = PeriodicTask.objects.in_bulk([job.name for job in jobs] + [CATCH_UP], field_name="name")
    for job in jobs:
        owned = {"task": TASK, "args": json.dumps([job.name]), "kwargs": "{}"}
        task = tasks.get(job.name)
        if task is None:
            PeriodicTask.objects.create(
                name=job.name,
                crontab=_crontab(job.schedule, settings.TIME_ZONE),
                description=job.description,
                **owned,
            )
            created += 1
        elif any(getattr(task, field) != value for field, value in owned.items()):
            for field, value in owned.items():
                setattr(task, field, value)
            task.save(update_fields=list(owned))
            repointed += 1
    if CATCH_UP not in tasks:
        created += _create_catch_up()
    return {"created": created, "repointed": repointed}


def _create_catch_up() -> int:
    """The periodic look for slots whose runner died: every CATCH_UP_MINUTES unless an
    administrator changes it."""
    every, _ = IntervalSchedule.objects.get_or_create(
        every=CATCH_UP_MINUTES, period=IntervalSchedule.MINUTES
    )
    PeriodicTask.objects.create(
        name=CATCH_UP,
        task=CATCH_UP_TASK,
        interval=every,
        description="Queue again each job whose latest slot has not run (its runner was killed "
        "mid-run, or its message lost).",
    )
    return 1


def sync_after_migrate(sender, **kwargs) -> None:
    sync_schedules()
