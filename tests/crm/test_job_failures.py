"""A failing job is recorded with its traceback; after N failures in a row it is disabled and
the administrators are emailed through the outbox, once."""

from datetime import UTC, datetime, timedelta

import pytest
from django_celery_beat.models import PeriodicTask

from crm import runner
from crm.models import JobRun
from crm.schedules import sync_schedules
from mailsync.models import OutboxMessage

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


@pytest.fixture
def flaky(make_job):
    outcomes = []

    def flaky_job(as_of, *, dry_run=False):
        if outcomes.pop(0) == "fail":
            raise RuntimeError("ledger is on fire")
        return {"ok": 1}

    make_job("test_flaky", flaky_job, schedule="0 * * * *")
    sync_schedules()
    return outcomes


def run_hours(n, start=T0):
    return [runner.run_scheduled("test_flaky", start + timedelta(hours=h)) for h in range(n)]


@pytest.mark.django_db
def test_a_failure_is_recorded_with_its_traceback_and_the_run_goes_on(flaky):
    flaky.extend(["fail", "ok"])

    failed, ok = run_hours(2)

    assert failed.status == JobRun.Status.FAILED
    assert "RuntimeError: ledger is on fire" in failed.error
    assert "Traceback (most recent call last)" in failed.error
    assert ok.status == JobRun.Status.SUCCEEDED


@pytest.mark.django_db
def test_three_failures_in_a_row_disable_the_job_and_email_the_admins_once(
    flaky, administrator, settings
):
    settings.VIGIL_JOB_MAX_FAILURES = 3
    flaky.extend(["fail"] * 3)

    run_hours(3)

    assert PeriodicTask.objects.get(name="test_flaky").enabled is False
    email = OutboxMessage.objects.get(source="monitoring")
    assert email.to == ["ada@vigil.example"]
    assert "test_flaky disabled after 3 failures" in email.subject
    assert "RuntimeError: ledger is on fire" in email.text_body
    # Disabled: the next tick does nothing, and no second email is queued.
    assert runner.run_scheduled("test_flaky", T0 + timedelta(hours=3)) is None
    assert OutboxMessage.objects.count() == 1


@pytest.mark.django_db
def test_a_success_in_between_resets_the_count(flaky, administrator, settings):
    settings.VIGIL_JOB_MAX_FAILURES = 3
    flaky.extend(["fail", "fail", "ok", "fail", "fail"])

    run_hours(5)

    assert PeriodicTask.objects.get(name="test_flaky").enabled is True
    assert not OutboxMessage.objects.exists()
