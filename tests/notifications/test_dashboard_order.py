"""The dashboard puts the most urgent first: blocking, due today (soonest first), overdue
(most recent first), upcoming; each card says how many there are in all."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone

from notifications.models import Notification
from tests.clients import logged_in
from tests.factories import DispatchFactory, OpportunityFactory, TaskFactory

DAY = date(2026, 11, 18)  # a Wednesday


@pytest.fixture
def noon(db):
    """Frozen at noon, local time."""
    moment = at(0, 12)
    with time_machine.travel(moment, tick=False):
        yield moment


def at(day_offset: int, hour: int):
    """A local time `day_offset` days from the frozen day."""
    return timezone.make_aware(datetime.combine(DAY + timedelta(day_offset), time(hour)))


def notification(user, title, when, *, blocking=False):
    opportunity = OpportunityFactory(owner=user, name=title)
    return Notification.objects.create(
        user=user,
        source=f"test:{title}",
        object_kind="opportunity",
        object_id=opportunity.pk,
        title=title,
        expires_at=when,
        visible_from=min(when, timezone.now()),
        blocking=blocking,
        grace_deadline=timezone.now() + timedelta(days=1) if blocking else None,
        created_at=timezone.now(),
    )


def test_todays_tasks_come_first_then_overdue_most_recent_first(rita, noon):
    TaskFactory(owner=rita, title="three weeks ago", due_at=at(-21, 9))
    TaskFactory(owner=rita, title="yesterday", due_at=at(-1, 9))
    TaskFactory(owner=rita, title="later today", due_at=at(0, 17))
    TaskFactory(owner=rita, title="this morning", due_at=at(0, 9))
    TaskFactory(owner=rita, title="tomorrow", due_at=at(1, 9))

    tasks = logged_in(rita).get("/").context["tasks"].rows

    assert [t["title"] for t in tasks] == [
        "this morning",
        "later today",
        "yesterday",
        "three weeks ago",
    ]


def test_notifications_blocking_then_today_then_overdue_then_upcoming(rita, noon):
    notification(rita, "last week", at(-7, 9))
    notification(rita, "tomorrow", at(1, 9))
    notification(rita, "yesterday", at(-1, 9))
    notification(rita, "this afternoon", at(0, 15))
    notification(rita, "blocking", at(-3, 9), blocking=True)
    notification(rita, "this morning", at(0, 9))

    # The gate keeps a blocked rep on the list, which is in the same order as the dashboard.
    shown = logged_in(rita).get("/notifications/").context["notifications"]

    today = logged_in(rita).get("/notifications/?when=today")
    assert [n.title for n in today.context["notifications"]] == ["this morning", "this afternoon"]
    assert today.context["blocked"]  # the notice stays whatever the filter
    assert [n.title for n in shown] == [
        "blocking",
        "this morning",
        "this afternoon",
        "yesterday",
        "last week",
        "tomorrow",
    ]


@override_settings(VIGIL_REMINDER_EXPIRY_DAYS=14)
def test_a_reminder_stops_showing_a_set_number_of_days_after_its_date(rita, noon):
    notification(rita, "thirteen days ago", at(-13, 12))
    notification(rita, "fifteen days ago", at(-15, 12))
    notification(rita, "blocking, a month ago", at(-30, 12), blocking=True)
    client = logged_in(rita)

    listed = [n.title for n in client.get("/notifications/").context["notifications"]]
    api = [n["title"] for n in client.get("/api/notifications/").json()["notifications"]]

    assert listed == api == ["blocking, a month ago", "thirteen days ago"]
    assert Notification.objects.get(title="fifteen days ago").status == "open"  # hidden, kept


def test_the_cards_show_their_totals_and_how_many_more(rita, noon):
    for day in range(1, 21):
        TaskFactory(owner=rita, title=f"overdue {day}", due_at=at(-day, 9))
        notification(rita, f"reminder {day}", at(-(day % 10), 9) + timedelta(minutes=day))
    for hour in range(12):
        DispatchFactory(owner=rita, team=rita.team, due_at=at(1, hour))

    page = logged_in(rita).get("/")

    tasks, notifications = page.context["tasks"], page.context["notifications"]
    assert (tasks.total, len(tasks.rows)) == (20, 15)
    assert (notifications.total, len(notifications.rows)) == (20, 10)
    html = page.content.decode()
    assert 'href="/tasks/?when=due">5 more' in html
    assert 'href="/notifications/">10 more' in html
    assert page.context["dispatches"].total == 12
    assert 'href="/dispatches/">2 more' in html
    # Of which overdue, linked to just those: 20 tasks, and the reminders of the 18 days
    # before today (day % 10 == 0 puts two on today).
    assert (tasks.overdue, notifications.overdue) == (20, 18)
    assert 'href="/tasks/?when=overdue">20 overdue</a>' in html
    assert 'href="/notifications/?when=overdue">18 overdue</a>' in html


@override_settings(VIGIL_REMINDER_EXPIRY_DAYS=14)
def test_the_notification_total_counts_each_shown_one_once(rita, noon):
    """Reminders from fourteen days ago on: overdue, today's and later ones, each once (the
    overdue ones are counted once and added to the rest)."""
    notification(rita, "fifteen days ago", at(-15, 12))  # no longer shown
    for day in (-13, -2, -1):
        notification(rita, f"overdue {day}", at(day, 12))
    notification(rita, "this morning", at(0, 9))
    notification(rita, "this evening", at(0, 20))
    notification(rita, "tomorrow", at(1, 9))

    notifications = logged_in(rita).get("/").context["notifications"]

    assert (notifications.total, notifications.overdue, len(notifications.rows)) == (6, 3, 6)


def test_no_more_link_when_everything_fits(rita, noon):
    TaskFactory(owner=rita, due_at=at(0, 15))

    page = logged_in(rita).get("/")

    assert page.context["tasks"].total == 1
    assert "more →" not in page.content.decode()


@override_settings(TIME_ZONE="UTC")
def test_today_is_the_readers_own_today(rita, boss):
    late = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)  # 22:00 on the 28th in New York
    TaskFactory(owner=rita, title="late call", due_at=late)
    boss.time_zone = "America/New_York"
    boss.save(update_fields=["time_zone"])

    with time_machine.travel(datetime(2026, 11, 28, 20, 0, tzinfo=UTC), tick=False):
        in_utc = logged_in(rita).get("/")
        in_new_york = logged_in(boss).get("/")

    assert in_utc.context["tasks"].rows == []  # due tomorrow in UTC
    assert [t["title"] for t in in_new_york.context["tasks"].rows] == ["late call"]
    assert "Sat 28 Nov 2026 22:00" in in_new_york.content.decode()
