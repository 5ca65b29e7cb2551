"""The Celery app. Beat only dispatches: every scheduled job is the one task
crm.run_scheduled_job, which hands over to the job engine (crm.runner)."""

import os
import sys

from celery import Celery
from celery.signals import beat_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")


def check_settings() -> None:
    """Fail with one line, not a traceback, when the environment is bad (celery CLI)."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.INSTALLED_APPS  # noqa: B018 - touching settings loads and validates them
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"vigil: configuration error: {exc}\n")
        sys.exit(2)


check_settings()
app = Celery("vigil")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@beat_init.connect
def sync_and_catch_up(sender, **kwargs) -> None:
    """On Beat start: make sure every job has its schedule, then queue one catch-up per job
    so slots missed while Beat was down run once (coalesced)."""
    from crm import registry
    from crm.schedules import sync_schedules
    from crm.tasks import run_scheduled_job

    sync_schedules()
    for job in registry.all_jobs():
        run_scheduled_job.delay(job.name, trigger="catchup")
