"""Blocking deadlines in working time (notifications.deadlines): with the company's working
calendar on, a grace period runs only in the user's working hours, so a weekend, a holiday or
an absence never runs it down; the deadline follows the calendar as it changes, says why it
moved, and while a user is away their delegate (or manager) sees their blocking items."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection

from crm import runner
from crm.models import Absence, Holiday, WorkingCalendar
from notifications import services
from notifications.models import Notification
from tests.clients import logged_in
from tests.factories import ReminderRuleFactory, TaskFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)
MONDAY = datetime(2026, 12, 7, 6, 0, tzinfo=BERLIN)  # the daily run, before work starts
# The daily run folds the dashboard's two rollups too: a statement each on PostgreSQL, four
# each and a savepoint on SQLite (crm.rollups.compact).
FOLD = 2 if connection.vendor == "postgresql" else 10
# A run at a new moment reads every range: each kind's span (two queries a kind), the one
# range of tasks in a transaction; PostgreSQL also takes a snapshot, deletes the last run's
# record before and writes it anew after, marks the range's writes as the run's own (two),
# and forgets the marks it saw.
SWEEP = 18 if connection.vendor == "postgresql" else 8
QUERIES_DAILY, QUERIES_REWORK = 25 + FOLD + SWEEP, 16


def at(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN)


@pytest.fixture
def company():
    # Monday to Friday, 09:00–17:00, Germany's public holidays; switched on.
    return WorkingCalendar.objects.create(
        enabled=True, day_starts=time(9), day_ends=time(17), holiday_country="DE"
    )


@pytest.fixture
def north(db):
    return TeamFactory(name="North")


@pytest.fixture
def boss(north):
    return UserFactory(username="boss", role="manager", team=north, time_zone="Europe/Berlin")


@pytest.fixture
def rita(north, boss):
    return UserFactory(
        username="rita", role="rep", team=north, manager=boss, time_zone="Europe/Berlin"
    )


@pytest.fixture
def ben(north):
    return UserFactory(username="ben", role="rep", team=north, time_zone="Europe/Berlin")


@pytest.fixture
def rule():
    return ReminderRuleFactory(
        name="Task due", object_kind="task", blocking=True, grace_period=8 * H
    )


def raise_for(rita, day=MONDAY, due=None) -> Notification:
    task = TaskFactory(owner=rita, title="Call Acme", due_at=due or day + 2 * H)
    runner.run_job("notifications_daily", day)
    return Notification.objects.get(user=rita, object_id=task.pk, blocking=True)


def test_the_grace_runs_in_working_hours_only(company, rita, rule):
    notification = raise_for(rita)

    # Eight working hours from Monday 06:00: Monday 09:00–17:00.
    assert notification.grace_deadline == at(7, 17)
    assert (
        notification.deadline_note
        == "Counted in working time: Mon 07 Dec 17:00, not Mon 07 Dec 14:00."
    )


def test_a_rep_on_leave_is_not_locked_out_and_the_note_says_why(company, rita, rule):
    Absence.objects.create(user=rita, first_day=date(2026, 12, 7), last_day=date(2026, 12, 18))

    notification = raise_for(rita)

    # Back on Monday 21 December: its whole working day is the grace.
    assert notification.grace_deadline == at(21, 17)
    assert "past the days off 07 Dec–18 Dec" in notification.deadline_note
    # On the wall clock she would have been locked out on the first day of her leave.
    assert services.is_locked(rita, at(9, 12)) is False
    assert services.is_locked(rita, at(21, 17, 1)) is True


def test_the_same_rep_is_locked_out_on_the_wall_clock(rita, rule):
    WorkingCalendar.objects.create(enabled=False)
    Absence.objects.create(user=rita, first_day=date(2026, 12, 7), last_day=date(2026, 12, 18))

    notification = raise_for(rita)

    assert notification.grace_deadline == MONDAY + 8 * H
    assert notification.deadline_note == ""
    assert services.is_locked(rita, at(9, 12)) is True


def test_an_absence_recorded_later_moves_the_deadline_past_it(
    company, rita, rule, django_capture_on_commit_callbacks
):
    notification = raise_for(rita)
    assert notification.grace_deadline == at(7, 17)

    # Worked out once the absence is saved (committed).
    with django_capture_on_commit_callbacks(execute=True):
        absence = Absence.objects.create(
            user=rita, first_day=date(2026, 12, 7), last_day=date(2026, 12, 8)
        )
    notification.refresh_from_db()
    assert notification.grace_deadline == at(9, 17)
    assert "07 Dec–08 Dec" in notification.deadline_note

    with django_capture_on_commit_callbacks(execute=True) as unchanged:
        absence.note = "Family"
        absence.save()
    assert unchanged == []  # nothing a calendar is made of

    # A mistake, taken back: the deadline comes back with it (a delete after that save too).
    with django_capture_on_commit_callbacks(execute=True):
        absence.delete()
    notification.refresh_from_db()
    assert notification.grace_deadline == at(7, 17)


def test_a_public_holiday_and_an_added_day_off_move_the_deadline(
    company, rita, django_capture_on_commit_callbacks
):
    ReminderRuleFactory(name="Task due", object_kind="task", blocking=True, grace_period=16 * H)
    thursday = at(24, 6)  # Christmas Eve works; 25 December is a public holiday, then a weekend
    notification = raise_for(rita, day=thursday)

    assert notification.grace_deadline == at(28, 17)
    assert "25 Dec" in notification.deadline_note

    # A day off for everyone: the job reworks every deadline once the holiday is saved.
    with django_capture_on_commit_callbacks() as queued:
        Holiday.objects.create(date=date(2026, 12, 28), name="Bridge day")
    assert len(queued) == 1
    runner.run_job("blocking_deadlines", at(24, 12))
    notification.refresh_from_db()
    assert notification.grace_deadline == at(29, 17)
    assert "25 Dec–28 Dec" in notification.deadline_note  # the weekend between is no gap


def test_a_team_holiday_moves_only_that_teams_deadlines(
    company, rita, rule, django_capture_on_commit_callbacks
):
    south = TeamFactory(name="South")
    sam = UserFactory(username="sam", team=south, time_zone="Europe/Berlin")
    mine, theirs = raise_for(rita), raise_for(sam)

    with django_capture_on_commit_callbacks(execute=True):
        Holiday.objects.create(date=date(2026, 12, 7), name="Team day", team=south)

    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.grace_deadline, theirs.grace_deadline) == (at(7, 17), at(8, 17))


def test_switching_the_calendar_off_puts_back_the_wall_clock(
    company, rita, rule, django_capture_on_commit_callbacks
):
    notification = raise_for(rita)

    with django_capture_on_commit_callbacks() as queued:
        company.enabled = False
        company.save()
    with django_capture_on_commit_callbacks() as again:
        company.save()  # nothing a calendar is made of changed

    assert (len(queued), len(again)) == (1, 0)
    runner.run_job("blocking_deadlines", at(7, 8))
    notification.refresh_from_db()
    assert notification.grace_deadline == MONDAY + 8 * H
    assert notification.deadline_note == ""


def test_a_deadline_a_manager_set_moves_only_past_days_off(company, rita, boss):
    task = TaskFactory(owner=rita, due_at=at(9, 12))
    Absence.objects.create(user=rita, first_day=date(2026, 12, 9), last_day=date(2026, 12, 9))

    set_by_boss = services.add_blocking(boss, rita, "task", task.pk, at(9, 12), at(7, 10))

    # Monday 7 h, Tuesday 8 h and Wednesday 3 h of her usual time: with Wednesday off, Thursday.
    assert set_by_boss.grace_deadline == at(10, 12)
    # Without a day off in between, the instant set stands, even after hours.
    late = services.add_blocking(boss, rita, "task", task.pk, at(8, 20), at(7, 10))
    assert late.grace_deadline == at(8, 20)
    evening = services.add_blocking(boss, rita, "task", task.pk, at(7, 20), at(7, 18))
    assert (evening.grace_deadline, evening.deadline_note) == (at(7, 20), "")


def test_an_unlock_extends_in_working_time(company, rita, boss, rule):
    raise_for(rita)
    friday_evening = at(11, 18)
    assert services.is_locked(rita, friday_evening)

    services.unlock(rita, boss, friday_evening, extend_by=4 * H)

    # Four working hours from Friday 18:00: Monday 09:00–13:00.
    assert Notification.objects.get(user=rita, blocking=True).grace_deadline == at(14, 13)


def test_a_delegate_sees_the_absent_reps_blocking_items(company, rita, ben, boss, rule):
    raise_for(rita)
    Absence.objects.create(
        user=rita, first_day=date(2026, 12, 7), last_day=date(2026, 12, 18), delegate=ben
    )
    stranger = UserFactory(username="sam", team=TeamFactory(name="South"))

    with time_machine.travel(at(8, 10)):
        covering = logged_in(ben).get("/notifications/").content.decode()
        managing = logged_in(boss).get("/notifications/").content.decode()
        unrelated = logged_in(stranger).get("/notifications/").content.decode()

    assert 'id="covering"' in covering and "Task due: Call Acme" in covering
    assert "away until Fri 18 Dec" in covering
    # A named delegate stands in instead of the manager; nobody else sees them.
    assert 'id="covering"' not in managing
    assert 'id="covering"' not in unrelated


def test_with_no_delegate_the_manager_covers(company, rita, boss, rule):
    raise_for(rita)
    Absence.objects.create(user=rita, first_day=date(2026, 12, 7), last_day=date(2026, 12, 8))

    with time_machine.travel(at(8, 10)):
        page = logged_in(boss).get("/notifications/").content.decode()
    with time_machine.travel(at(9, 10)):  # she is back
        later = logged_in(boss).get("/notifications/").content.decode()

    assert 'id="covering"' in page and "Task due: Call Acme" in page
    assert 'id="covering"' not in later


@pytest.mark.parametrize("people", [1, 4])
def test_deadlines_are_worked_out_in_a_fixed_number_of_queries(
    company, rule, north, people, django_assert_num_queries
):
    staff = [UserFactory(team=north, time_zone="Europe/Berlin") for _ in range(people)]
    for person in staff:
        TaskFactory(owner=person, due_at=MONDAY + 2 * H)
    runner.run_job("notifications_daily", MONDAY)
    for person in staff:
        TaskFactory(owner=person, due_at=at(8, 8))
    tuesday = at(8, 6)

    # The daily run works out its new deadlines: users, lock and read, calendars, one write.
    with django_assert_num_queries(QUERIES_DAILY):
        counts = runner.run_job("notifications_daily", tuesday).counts
    # The nightly job reads every open one and writes none: nothing changed since.
    with django_assert_num_queries(QUERIES_REWORK):
        reworked = runner.run_job("blocking_deadlines", tuesday).counts

    assert counts["created"] == people and counts["deadlines"] == people
    assert reworked == {"changed": 0}
    assert set(
        Notification.objects.filter(created_at=tuesday).values_list("grace_deadline", flat=True)
    ) == {at(8, 17)}


def test_a_delegate_from_another_team_sees_nothing_of_this_one(company, rita, rule):
    raise_for(rita)
    outsider = UserFactory(username="sam", team=TeamFactory(name="South"))
    Absence.objects.create(
        user=rita, first_day=date(2026, 12, 7), last_day=date(2026, 12, 18), delegate=outsider
    )

    with time_machine.travel(at(8, 10)):
        page = logged_in(outsider).get("/notifications/").content.decode()

    assert "Call Acme" not in page


def test_the_delegate_deals_with_the_absent_reps_item_while_they_are_away(company, rita, ben, rule):
    raise_for(rita)
    task = Notification.objects.get(user=rita, blocking=True).object_id
    Absence.objects.create(
        user=rita, first_day=date(2026, 12, 8), last_day=date(2026, 12, 18), delegate=ben
    )

    with time_machine.travel(at(7, 10)):  # not away yet: a colleague may not
        assert logged_in(ben).post(f"/tasks/{task}/complete").status_code == 403
    with time_machine.travel(at(8, 10)):
        assert logged_in(ben).post(f"/tasks/{task}/complete").status_code == 302

    assert not Notification.objects.filter(user=rita, blocking=True, status="open").exists()


def test_a_delegate_who_does_not_sell_changes_nothing(company, rita, rule, north):
    raise_for(rita)
    task = Notification.objects.get(user=rita, blocking=True).object_id
    fiona = UserFactory(username="fiona", role="finance", team=north)
    Absence.objects.create(
        user=rita, first_day=date(2026, 12, 7), last_day=date(2026, 12, 18), delegate=fiona
    )

    with time_machine.travel(at(8, 10)):
        assert logged_in(fiona).post(f"/tasks/{task}/complete").status_code in (403, 404)


def test_an_absence_is_whole_days_in_the_absent_persons_zone(company, north):
    from crm.visibility import stands_in_for

    kiri = UserFactory(username="kiri", team=north, time_zone="Pacific/Auckland")
    lou = UserFactory(username="lou", role="rep", team=north, time_zone="America/Los_Angeles")
    Absence.objects.create(
        user=kiri, first_day=date(2026, 12, 15), last_day=date(2026, 12, 15), delegate=lou
    )
    auckland = ZoneInfo("Pacific/Auckland")

    # 10:00 on the 15th in Auckland is still the 14th in Los Angeles.
    with time_machine.travel(datetime(2026, 12, 15, 10, tzinfo=auckland), tick=False):
        assert stands_in_for(lou, kiri.pk)
    with time_machine.travel(datetime(2026, 12, 16, 10, tzinfo=auckland), tick=False):
        assert not stands_in_for(lou, kiri.pk)


def test_new_hours_while_on_rework_every_deadline_and_a_save_of_nothing_does_not(
    company, rita, rule, django_capture_on_commit_callbacks
):
    notification = raise_for(rita)

    with django_capture_on_commit_callbacks() as queued:
        company.day_starts = time(8)
        company.save()
    with django_capture_on_commit_callbacks() as again:
        company.save()

    assert (len(queued), len(again)) == (1, 0)
    runner.run_job("blocking_deadlines", at(7, 8))
    notification.refresh_from_db()
    assert notification.grace_deadline == at(7, 16)  # the day starts at 08:00 now
