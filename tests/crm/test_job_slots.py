"""Scheduled slots: each runs at most once, missed ones are caught up once, coalesced."""

import threading
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connections

from crm import runner
from crm.models import JobRun
from crm.schedules import sync_schedules

DAY0_6AM = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


@pytest.fixture
def daily(make_job):
    calls = []

    def daily_report(as_of, *, dry_run=False):
        calls.append(as_of)
        return {"reported": 1}

    make_job("test_daily", daily_report, schedule="0 6 * * *")
    return calls


@pytest.mark.django_db
def test_a_beat_tick_runs_the_latest_slot_with_the_slot_as_as_of(daily):
    run = runner.run_scheduled("test_daily", DAY0_6AM + timedelta(minutes=3))

    assert run.slot == DAY0_6AM and run.as_of == DAY0_6AM
    assert run.trigger == JobRun.Trigger.SCHEDULE and run.status == JobRun.Status.SUCCEEDED
    assert run.counts == {"reported": 1}
    assert daily == [DAY0_6AM]


@pytest.mark.django_db
def test_a_second_tick_for_the_same_slot_does_nothing(daily, django_assert_max_num_queries):
    runner.run_scheduled("test_daily", DAY0_6AM)
    with django_assert_max_num_queries(2):
        assert runner.run_scheduled("test_daily", DAY0_6AM + timedelta(hours=5)) is None

    assert daily == [DAY0_6AM]
    assert JobRun.objects.count() == 1


@pytest.mark.django_db
def test_catch_up_after_three_days_down_runs_once_and_covers_the_missed_slots(daily):
    runner.run_scheduled("test_daily", DAY0_6AM)
    back_up = DAY0_6AM + timedelta(days=3, hours=4)  # day 3, 10:00: day 1 and 2 were missed

    runs = runner.catch_up(back_up)

    mine = [(r.trigger, r.slot, r.missed_slots) for r in runs if r.job == "test_daily"]
    assert mine == [("catchup", DAY0_6AM + timedelta(days=3), 2)]
    again = runner.catch_up(back_up + timedelta(minutes=30))
    assert [r for r in again if r.job == "test_daily"] == []
    assert runner.run_scheduled("test_daily", back_up + timedelta(hours=1)) is None
    assert daily == [DAY0_6AM, DAY0_6AM + timedelta(days=3)]


@pytest.mark.django_db
def test_a_disabled_job_is_neither_scheduled_nor_caught_up(daily):
    from django_celery_beat.models import PeriodicTask

    sync_schedules()
    PeriodicTask.objects.filter(name="test_daily").update(enabled=False)

    assert runner.run_scheduled("test_daily", DAY0_6AM) is None
    assert "test_daily" not in [r.job for r in runner.catch_up(DAY0_6AM + timedelta(days=2))]
    assert daily == []


@pytest.mark.django_db
def test_slots_follow_the_company_time_zone(make_job, settings):
    settings.TIME_ZONE = "Europe/Madrid"
    make_job("test_madrid", lambda as_of, dry_run=False: {}, schedule="0 6 * * *")
    sync_schedules()

    run = runner.run_scheduled("test_madrid", datetime(2026, 7, 1, 12, 0, tzinfo=UTC))

    assert run.slot == datetime(2026, 7, 1, 4, 0, tzinfo=UTC)  # 06:00 CEST


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runners_run_a_slot_once(make_job):
    """Two Beat ticks racing for the same slot on PostgreSQL: one runs it, the other finds the
    slot claimed; a manual run meanwhile is refused by the shared lease."""
    inside, release = threading.Event(), threading.Event()
    calls = []

    def slow(as_of, *, dry_run=False):
        calls.append(as_of)
        inside.set()
        assert release.wait(30)
        return {"done": 1}

    make_job("test_slow", slow, schedule="*/30 * * * *")
    tick = datetime(2026, 11, 2, 9, 30, 5, tzinfo=UTC)
    outcomes = {}

    def runner_thread(label):
        try:
            if label == "manual":
                outcomes[label] = runner.run_job("test_slow", tick)
            else:
                outcomes[label] = runner.run_scheduled("test_slow", tick)
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test checks
            outcomes[label] = exc
        finally:
            connections.close_all()

    first = threading.Thread(target=runner_thread, args=("first",))
    first.start()
    assert inside.wait(30)
    for label in ("second", "manual"):
        other = threading.Thread(target=runner_thread, args=(label,))
        other.start()
        other.join(30)
    release.set()
    first.join(30)

    assert isinstance(outcomes["first"], JobRun)
    assert outcomes["second"] is None
    assert "'test_slow' is already running" in str(outcomes["manual"])
    assert runner.run_scheduled("test_slow", tick) is None  # a retry after the first ended
    assert len(calls) == 1
    assert JobRun.objects.filter(job="test_slow").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_slot_constraint_holds_even_without_the_lease(make_job):
    """Belt and braces: if two runners ever got past the lease, the database still refuses a
    second row for the same scheduled slot."""
    make_job("test_once", lambda as_of, dry_run=False: {}, schedule="0 6 * * *")
    runner.run_job("test_once", DAY0_6AM, trigger="schedule", slot=DAY0_6AM)

    with pytest.raises(runner.SlotTaken):
        runner.run_job("test_once", DAY0_6AM, trigger="catchup", slot=DAY0_6AM)
    # Manual runs may re-run a slot: jobs are idempotent.
    runner.run_job("test_once", DAY0_6AM, trigger="manual", slot=DAY0_6AM)
    assert JobRun.objects.filter(job="test_once").count() == 2


@time_machine.travel(DAY0_6AM + timedelta(hours=2), tick=False)
@pytest.mark.django_db
def test_catchup_command_reports_what_it_ran(daily):
    out = StringIO()
    call_command("catchup", stdout=out)

    assert "test_daily: succeeded" in out.getvalue()
    assert daily == [DAY0_6AM]
