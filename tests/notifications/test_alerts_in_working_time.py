"""Expired-job alerts and working time: with the company's calendar on, an alert to someone off
duty waits for their next working hour (unless they chose alerts at once), a dispatch team's
shifts decide when its alerts go out, and the 3 hours may be counted in the owner's working
time. With the calendar off (the default) everything goes at once, on the wall clock."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from crm import runner
from crm.models import WorkingCalendar
from mailsync import outbox
from mailsync.models import OutboxMessage
from notifications.models import AlertSettings, Notification, OverdueAlert
from tests.factories import DispatchFactory, TaskFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=BERLIN)  # 7 December is a Monday


@pytest.fixture
def company(db):
    return WorkingCalendar.objects.create(enabled=True, day_starts=time(9), day_ends=time(17))


@pytest.fixture
def boss(north):
    return UserFactory(
        username="boss", role="manager", team=north, email="boss@example.com", alerts_at_once=True
    )


@pytest.fixture
def rita(boss, north):
    return UserFactory(
        username="rita",
        team=north,
        manager=boss,
        email="rita@example.com",
        time_zone="Europe/Berlin",
    )


def alert(when: datetime) -> dict:
    with time_machine.travel(when, tick=False):  # it emails: never for a future instant
        return runner.run_job("expired_jobs_alert", when).counts


def sent_at() -> dict[str, datetime]:
    return {
        m.to[0]: m.next_attempt_at
        for m in OutboxMessage.objects.filter(source="expired_jobs_alert")
    }


def test_an_alert_to_someone_off_duty_waits_for_their_next_working_hour(company, rita, boss):
    TaskFactory(owner=rita, title="Send quote", due_at=at(7, 18))

    counts = alert(at(7, 21, 30))

    assert counts["overdue"] == 1 and counts["held"] == 1
    # Rita works 09:00–17:00: her alert waits for Tuesday 09:00; her manager asked for alerts
    # at once and gets his now.
    assert sent_at() == {"rita@example.com": at(8, 9), "boss@example.com": at(7, 21, 30)}
    visible = dict(Notification.objects.values_list("user__username", "visible_from"))
    assert visible == {"rita": at(8, 9), "boss": at(7, 21, 30)}
    due_now = OutboxMessage.objects.filter(outbox.due(at(7, 22)))
    assert [m.to for m in due_now] == [["boss@example.com"]]


def test_with_the_calendar_off_every_alert_goes_at_once(rita, boss):
    TaskFactory(owner=rita, due_at=at(7, 18))

    counts = alert(at(7, 21, 30))

    assert "held" not in counts
    assert set(sent_at().values()) == {at(7, 21, 30)}


def test_holding_is_a_setting(company, rita, boss):
    AlertSettings.objects.create(hold_off_duty=False)
    TaskFactory(owner=rita, due_at=at(7, 18))

    alert(at(7, 21, 30))

    assert set(sent_at().values()) == {at(7, 21, 30)}


def test_a_dispatch_teams_shifts_decide_when_its_alerts_go_out(company, rita, boss):
    evenings = TeamFactory(
        name="Evening visits", kind="visiting", day_starts=time(18), day_ends=time(2)
    )
    days = TeamFactory(name="Day visits", kind="visiting")
    DispatchFactory(owner=rita, team=evenings, title="Late visit", due_at=at(7, 18))
    DispatchFactory(owner=rita, team=days, title="Day visit", due_at=at(7, 18))

    alert(at(7, 21, 30))

    # The evening team is on shift: rita's alert about its dispatch goes now; the day team's
    # waits for her morning.
    assert sorted(
        OutboxMessage.objects.filter(to=["rita@example.com"]).values_list(
            "next_attempt_at", "text_body"
        )
    )[0][0] == at(7, 21, 30)
    held = OutboxMessage.objects.get(to=["rita@example.com"], next_attempt_at=at(8, 9))
    assert "Day visit" in held.text_body and "Late visit" not in held.text_body


def test_the_three_hours_may_count_in_the_owners_working_time(company, rita, boss):
    AlertSettings.objects.create(working_time=True)
    TaskFactory(owner=rita, title="Send quote", due_at=at(7, 16))

    # One working hour on Monday, two on Tuesday morning: 11:00.
    assert alert(at(7, 19))["overdue"] == 0
    assert alert(at(8, 10, 30))["overdue"] == 0
    assert alert(at(8, 11))["overdue"] == 1
    assert OverdueAlert.objects.get().due_at == at(7, 16)
    assert alert(at(8, 11, 30))["overdue"] == 0  # once per episode


def test_without_the_option_the_three_hours_are_the_wall_clocks(company, rita, boss):
    TaskFactory(owner=rita, due_at=at(7, 16))

    assert alert(at(7, 19))["overdue"] == 1


def test_a_job_due_after_hours_before_a_weekend_is_alerted_on_monday(company, rita, boss):
    AlertSettings.objects.create(working_time=True)  # lookback: two days of the wall clock
    TaskFactory(owner=rita, title="Friday evening", due_at=at(4, 17, 30))

    # Runs every half hour from Friday evening: three working hours pass on Monday at noon,
    # more than two days after it fell due.
    runs = [at(4, 18) + timedelta(minutes=30 * n) for n in range(int(66 / 0.5) + 1)]
    alerted = [when for when in runs if alert(when)["overdue"]]

    assert alerted == [at(7, 12)]
