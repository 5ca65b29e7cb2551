"""The PARC run's day and time, as administrators set them: the same crontab Beat reads."""

from datetime import time

from django.conf import settings
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from crm.schedules import sync_schedules

TASK = "parc_generate"
# Cron numbers the days from Sunday = 0.
DAYS = [
    ("1", "Monday"),
    ("2", "Tuesday"),
    ("3", "Wednesday"),
    ("4", "Thursday"),
    ("5", "Friday"),
    ("6", "Saturday"),
    ("0", "Sunday"),
]


def current() -> tuple[str, time] | None:
    """(day, time) when the schedule is one weekly time, else None (an expert's crontab)."""
    crontab = _task().crontab
    if crontab is None:
        return None
    fields = (crontab.minute, crontab.hour, crontab.day_of_week)
    if not all(f.isdigit() for f in fields) or (crontab.day_of_month, crontab.month_of_year) != (
        "*",
        "*",
    ):
        return None
    return crontab.day_of_week, time(int(crontab.hour), int(crontab.minute))


def set_weekly(day: str, at: time) -> None:
    """Run PARC every `day` at `at`, company time. Beat notices within seconds, no restart."""
    task = _task()
    task.crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=str(at.minute),
        hour=str(at.hour),
        day_of_week=day,
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    task.save()  # django-celery-beat's signal tells Beat the schedule changed


def _task() -> PeriodicTask:
    task = PeriodicTask.objects.select_related("crontab").filter(name=TASK).first()
    if task is None:
        sync_schedules()
        task = PeriodicTask.objects.select_related("crontab").get(name=TASK)
    return task
