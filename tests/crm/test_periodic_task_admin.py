"""Admin → Periodic tasks: each job's last run, status and next run from the ledger, read in the
same number of queries however many jobs the page lists."""

from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from crm.models import JobRun

CHANGELIST = reverse("admin:django_celery_beat_periodictask_changelist")
NOW = datetime.fromisoformat("2026-11-28T10:00:00+00:00")


def ran(job: str, started_at: datetime, status: str = JobRun.Status.SUCCEEDED) -> JobRun:
    return JobRun.objects.create(
        job=job,
        trigger=JobRun.Trigger.MANUAL,
        as_of=started_at,
        started_at=started_at,
        finished_at=started_at,
        status=status,
    )


def row_of(html: str, name: str) -> str:
    start = html.index(f">{name}</a>")
    return html[start : html.index("</tr>", start)]


@pytest.fixture
def schedules(db):
    call_command("sync_schedules", stdout=StringIO())


@pytest.mark.django_db
def test_a_job_that_ran_shows_its_last_run_and_status(
    client, administrator, schedules, time_machine
):
    time_machine.move_to(NOW, tick=False)
    ran("outbox_send", NOW - timedelta(days=1), JobRun.Status.FAILED)
    ran("outbox_send", NOW - timedelta(minutes=3))
    client.force_login(administrator)

    html = client.get(CHANGELIST).content.decode()

    row = row_of(html, "outbox_send")
    # The one date format of every page, with how long ago.
    assert "Sat 28 Nov 2026 09:57</time> <span" in row and "(3 min ago)" in row
    assert "succeeded" in row and "failed" not in row


@pytest.mark.django_db
def test_a_job_that_never_ran_says_never_and_shows_its_next_run(
    client, administrator, schedules, time_machine
):
    time_machine.move_to(NOW, tick=False)
    task = PeriodicTask.objects.get(name="outbox_send")
    task.crontab = CrontabSchedule.objects.create(minute="30", hour="2", timezone="UTC")
    task.save()
    client.force_login(administrator)

    html = client.get(CHANGELIST).content.decode()

    row = row_of(html, "outbox_send")
    assert "never" in row
    assert "30 2 * * * UTC" in row
    assert "Sun 29 Nov 2026 02:30</time>" in row and "(in 16 h)" in row  # next run


@pytest.mark.django_db
def test_a_disabled_job_has_no_next_run(client, administrator, schedules):
    PeriodicTask.objects.filter(name="outbox_send").update(enabled=False)
    client.force_login(administrator)

    row = row_of(client.get(CHANGELIST).content.decode(), "outbox_send")

    assert row.rstrip().endswith('<td class="field-next_run">-</td>')


@pytest.mark.django_db
def test_the_page_costs_the_same_queries_for_one_job_or_all(
    client, administrator, schedules, django_assert_num_queries
):
    names = list(PeriodicTask.objects.values_list("name", flat=True))
    assert len(names) > 5
    for name in names:
        ran(name, NOW)
    client.force_login(administrator)
    client.get(CHANGELIST)  # warm the session and content-type caches

    with CaptureQueriesContext(connection) as all_jobs:
        client.get(CHANGELIST)
    PeriodicTask.objects.exclude(name=names[0]).delete()
    with django_assert_num_queries(len(all_jobs)):
        client.get(CHANGELIST)
