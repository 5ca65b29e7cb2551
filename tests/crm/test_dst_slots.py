"""Daylight saving time: one slot per local wall-clock time, as Beat fires them.

Europe/Madrid in 2027 springs forward on 28 March (02:00 CET → 03:00 CEST) and falls back on
31 October (03:00 CEST → 02:00 CET); Australia/Sydney falls back on 4 April (03:00 AEDT → 02:00
AEST) and springs forward on 3 October (02:00 AEST → 03:00 AEDT). Expected slots are written
out by hand, as local times, and checked against the real zone data.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django_celery_beat.models import PeriodicTask

from crm import runner, slots
from crm.models import JobRun
from crm.schedules import sync_schedules

MADRID, SYDNEY = "Europe/Madrid", "Australia/Sydney"
CHANGES = {
    "madrid-spring": (MADRID, (2027, 3, 28)),
    "madrid-autumn": (MADRID, (2027, 10, 31)),
    "sydney-autumn": (SYDNEY, (2027, 4, 4)),
    "sydney-spring": (SYDNEY, (2027, 10, 3)),
}


def local(zone, day, hh_mm, fold=0):
    hour, minute = map(int, hh_mm.split(":"))
    return datetime(*day, hour, minute, tzinfo=ZoneInfo(zone), fold=fold)


def listed(expression, zone, start, end):
    """Every slot in (start, end], through next_slot."""
    found, moment = [], start
    while (moment := slots.next_slot(expression, zone, moment)) <= end:
        found.append(moment)
    return found


def names(moments, zone):
    return ", ".join(m.astimezone(ZoneInfo(zone)).strftime("%H:%M %Z") for m in moments)


# Slots between 00:45 and 04:15 local (first occurrences) on the day of the change.
EXPECTED = {
    ("madrid-spring", "*/30 * * * *"): "01:00 CET, 01:30 CET, 03:00 CEST, 03:30 CEST, 04:00 CEST",
    ("madrid-autumn", "*/30 * * * *"): "01:00 CEST, 01:30 CEST, 02:00 CEST, 02:30 CEST, "
    "03:00 CET, 03:30 CET, 04:00 CET",
    ("sydney-autumn", "*/30 * * * *"): "01:00 AEDT, 01:30 AEDT, 02:00 AEDT, 02:30 AEDT, "
    "03:00 AEST, 03:30 AEST, 04:00 AEST",
    ("sydney-spring", "*/30 * * * *"): "01:00 AEST, 01:30 AEST, 03:00 AEDT, 03:30 AEDT, 04:00 AEDT",
    ("madrid-spring", "30 2 * * *"): "03:00 CEST",
    ("madrid-autumn", "30 2 * * *"): "02:30 CEST",
    ("sydney-autumn", "30 2 * * *"): "02:30 AEDT",
    ("sydney-spring", "30 2 * * *"): "03:00 AEDT",
    ("madrid-spring", "30 2 * * 0"): "03:00 CEST",  # the four days are Sundays
    ("madrid-autumn", "30 2 * * 0"): "02:30 CEST",
    ("sydney-autumn", "30 2 * * 0"): "02:30 AEDT",
    ("sydney-spring", "30 2 * * 0"): "03:00 AEDT",
}


def window(change):
    zone, day = CHANGES[change]
    return zone, local(zone, day, "00:45"), local(zone, day, "04:15")


@pytest.mark.parametrize(("change", "expression"), sorted(EXPECTED))
def test_each_local_time_is_one_slot(change, expression):
    zone, start, end = window(change)

    found = listed(expression, zone, start, end)

    assert names(found, zone) == EXPECTED[change, expression]
    assert slots.slots_between(expression, zone, start, end) == len(found)
    assert slots.latest_slot(expression, zone, end) == found[-1]


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_minute_has_one_slot_per_real_minute_except_a_repeated_hour(change):
    zone, start, end = window(change)  # 3.5 h of wall clock
    real_minutes = int((end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() // 60)

    found = listed("* * * * *", zone, start, end)

    assert len(set(found)) == len(found)
    repeated = 60 if "autumn" in change else 0
    assert len(found) == real_minutes - repeated
    assert slots.slots_between("* * * * *", zone, start, end) == len(found) - 1


def test_in_the_repeated_hour_the_latest_slot_is_the_first_occurrence():
    second_pass = local(MADRID, (2027, 10, 31), "02:40", fold=1)  # 02:40 CET

    assert names([slots.latest_slot("30 2 * * *", MADRID, second_pass)], MADRID) == "02:30 CEST"
    assert names([slots.latest_slot("*/30 * * * *", MADRID, second_pass)], MADRID) == "02:30 CEST"
    assert names([slots.next_slot("*/30 * * * *", MADRID, second_pass)], MADRID) == "03:00 CET"
    london = datetime(2027, 10, 31, 1, 40, tzinfo=UTC)  # 01:40 GMT, offset zero: the 2nd pass
    assert names([slots.latest_slot("*/30 * * * *", "Europe/London", london)], "Europe/London") == (
        "01:30 BST"
    )


def test_the_day_after_each_change_counts_no_missed_slot():
    for zone, day in CHANGES.values():
        before = local(zone, day, "02:30") - timedelta(days=1)
        after = local(zone, day, "02:30") + timedelta(days=1)
        assert slots.slots_between("30 2 * * *", zone, before, after) == 1


# --- Through Beat: its real crontab stepping decides when the engine is asked ---------------


def beat_fires(expression, zone, start, end, step):
    """The instants at which django-celery-beat's crontab says the task is due, stepping the
    frozen clock as Beat's loop would."""
    schedule = PeriodicTask.objects.get(name="test_dst").crontab.schedule
    assert str(schedule.tz) == zone
    fires, last_run_at, moment = [], start, start
    while moment <= end:
        with time_machine.travel(moment, tick=False):
            due, _ = schedule.is_due(last_run_at)
        if due:
            fires.append(moment)
            last_run_at = moment
        moment += step
    return fires


MINUTE, FIVE_MINUTES = timedelta(minutes=1), timedelta(minutes=5)
# Daily and weekly schedules run on past the next slot, which shows whether the engine thinks
# one was missed; Beat's loop wakes at least every 5 minutes for them.
HORIZONS = {"*/30 * * * *": timedelta(0), "* * * * *": timedelta(0)}
HORIZONS |= {"30 2 * * *": timedelta(days=1), "30 2 * * 0": timedelta(days=7)}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "expression"),
    sorted(EXPECTED) + [(change, "* * * * *") for change in sorted(CHANGES)],
)
def test_beat_and_the_engine_run_each_local_slot_once(change, expression, make_job, settings):
    zone, start, end = window(change)
    settings.TIME_ZONE = settings.CELERY_TIMEZONE = zone
    make_job("test_dst", lambda as_of, dry_run=False: {"ran": 1}, schedule=expression)
    sync_schedules()
    end += HORIZONS[expression]
    step = FIVE_MINUTES if HORIZONS[expression] else MINUTE
    runner.run_job("test_dst", start, trigger="schedule", slot=start)  # the run before

    for moment in beat_fires(expression, zone, start, end, step):
        with time_machine.travel(moment, tick=False):
            runner.run_scheduled("test_dst", moment)
            # A Beat restart right after: its catch-up finds nothing left to run.
            later = moment + timedelta(seconds=30)
            assert runner.run_scheduled("test_dst", later, trigger="catchup") is None

    runs = JobRun.objects.filter(job="test_dst").exclude(slot=start).order_by("slot")
    ran = [run.slot for run in runs]
    expected = listed(expression, zone, start, end)
    assert ran == expected
    assert [run.missed_slots for run in runs] == [0] * len(runs)
    on_the_day = [m for m in ran if window(change)[1] <= m <= window(change)[2]]
    if (change, expression) in EXPECTED:
        assert names(on_the_day, zone) == EXPECTED[change, expression]
