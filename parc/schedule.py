"""The PARC run's day and time, as administrators set them: the same crontab Beat reads."""

from datetime import time

from django.conf import settings
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from crm import runner
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
    minute, hour, day_of_month, month, day_of_week = expression().split()
    if not (minute + hour + day_of_week).isdigit() or (day_of_month, month) != ("*", "*"):
        return None
    return day_of_week, time(int(hour), int(minute))


def expression() -> str:
    """The crontab as Beat reads it (an administrator's edit included)."""
    return runner.schedule_of(TASK)[0]


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
