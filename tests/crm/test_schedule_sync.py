"""Schedules live in code and are synced into django-celery-beat without trampling the admin."""

import json

import pytest
from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from crm import registry
from crm.schedules import TASK, sync_schedules


@pytest.mark.django_db
def test_migrate_leaves_every_job_scheduled_in_the_company_time_zone(settings):
    for job in registry.all_jobs():
        task = PeriodicTask.objects.select_related("crontab").get(name=job.name)
        c = task.crontab
        assert (c.minute, c.hour, c.day_of_month, c.month_of_year, c.day_of_week) == tuple(
            job.schedule.split()
        )
        assert str(c.timezone) == settings.TIME_ZONE
        assert task.task == TASK and json.loads(task.args) == [job.name] and task.enabled


@pytest.mark.django_db
def test_sync_is_idempotent(make_job, django_assert_max_num_queries):
    make_job("test_weekly", lambda as_of, dry_run=False: {}, schedule="0 7 * * 1")
    assert sync_schedules() == {"created": 1, "repointed": 0}
    tasks, crontabs = PeriodicTask.objects.count(), CrontabSchedule.objects.count()

    with django_assert_max_num_queries(len(registry.all_jobs())):
        assert sync_schedules() == {"created": 0, "repointed": 0}
    assert (PeriodicTask.objects.count(), CrontabSchedule.objects.count()) == (tasks, crontabs)


@pytest.mark.django_db
def test_an_administrators_edit_survives_the_sync(make_job):
    make_job("test_weekly", lambda as_of, dry_run=False: {}, schedule="0 7 * * 1")
    sync_schedules()
    task = PeriodicTask.objects.get(name="test_weekly")
    task.crontab = CrontabSchedule.objects.create(
        minute="30", hour="18", day_of_week="5", timezone="Europe/Madrid"
    )
    task.enabled = False
    task.description = "Moved to Friday evening for the Madrid office"
    task.save()

    call_command("sync_schedules", verbosity=0)
    call_command("migrate", verbosity=0)  # migrate syncs too

    task.refresh_from_db()
    c = task.crontab
    assert (c.minute, c.hour, c.day_of_week, str(c.timezone)) == ("30", "18", "5", "Europe/Madrid")
    assert task.enabled is False
    assert task.description == "Moved to Friday evening for the Madrid office"


@pytest.mark.django_db
def test_a_task_pointed_elsewhere_is_repointed_at_the_engine(make_job):
    make_job("test_weekly", lambda as_of, dry_run=False: {}, schedule="0 7 * * 1")
    sync_schedules()
    PeriodicTask.objects.filter(name="test_weekly").update(task="something.else", args="[]")

    assert sync_schedules()["repointed"] == 1
    task = PeriodicTask.objects.get(name="test_weekly")
    assert (task.task, json.loads(task.args)) == (TASK, ["test_weekly"])


@pytest.mark.django_db
def test_the_sync_never_deletes_a_task_it_does_not_know(make_job):
    crontab = CrontabSchedule.objects.create(minute="0", hour="1")
    PeriodicTask.objects.create(name="someone_elses_task", task="x.y", crontab=crontab)

    sync_schedules()

    assert PeriodicTask.objects.filter(name="someone_elses_task").exists()
