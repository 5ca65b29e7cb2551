"""Escalation in levels before a block (notifications.escalation): a reminder email when the
item's date arrives, a copy to the manager at the rule's share of the grace period (counted in
working time when the company counts it), then the block; each level once, each audited."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from crm import runner
from crm.models import Task, WorkingCalendar
from mailsync.models import OutboxMessage
from notifications.models import AuditEvent, Notification
from tests.factories import ReminderRuleFactory, TaskFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)
MONDAY = datetime(2026, 12, 7, 6, 0, tzinfo=BERLIN)


def at(hour: int, minute: int = 0) -> datetime:
    return MONDAY.replace(hour=hour, minute=minute)


@pytest.fixture
def boss(db):
    team = TeamFactory(name="North")
    return UserFactory(username="boss", role="manager", team=team, email="boss@example.com")


@pytest.fixture
def rita(boss):
    return UserFactory(
        username="rita",
        team=boss.team,
        manager=boss,
        email="rita@example.com",
        time_zone="Europe/Berlin",
    )


@pytest.fixture
def rule(db):
    return ReminderRuleFactory(
        name="Task due",
        object_kind="task",
        lead_time=timedelta(hours=4),
        blocking=True,
        grace_period=8 * H,
        remind_when_due=True,
        manager_copy_at=50,
    )


def escalate(when: datetime) -> dict:
    with time_machine.travel(when, tick=False):  # it emails: never run for a future instant
        return runner.run_job("blocking_escalation", when).counts


def audited() -> list[str]:
    return list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))


def test_a_reminder_when_due_then_a_copy_to_the_manager_each_once(rule, rita, boss):
    TaskFactory(owner=rita, title="Call Acme", due_at=at(8))
    runner.run_job("notifications_daily", MONDAY)

    assert escalate(at(7)) == {"reminded": 0, "copied": 0}
    assert escalate(at(8, 15)) == {"reminded": 1, "copied": 0}
    email = OutboxMessage.objects.get(source="blocking_escalation")
    assert email.to == ["rita@example.com"]
    assert "Task due: Call Acme (resolve by Mon 07 Dec 14:00 Europe/Berlin)" in email.text_body
    assert audited() == ["reminded"]

    # Half of the eight hours' grace from 06:00 is 10:00.
    assert escalate(at(9, 45)) == {"reminded": 0, "copied": 0}
    assert escalate(at(10, 15)) == {"reminded": 0, "copied": 1}
    copy = Notification.objects.get(user=boss)
    assert copy.title == "Escalated (rita): Task due: Call Acme" and not copy.blocking
    assert audited() == ["reminded", "escalated"]

    assert escalate(at(10, 30)) == {"reminded": 0, "copied": 0}
    assert (
        OutboxMessage.objects.count() == 1 and Notification.objects.filter(user=boss).count() == 1
    )


def test_the_managers_share_is_counted_in_working_time(rule, rita, boss):
    WorkingCalendar.objects.create(enabled=True, day_starts=time(9), day_ends=time(17))
    TaskFactory(owner=rita, due_at=at(8))
    runner.run_job("notifications_daily", MONDAY)

    # Eight working hours from 06:00 end at 17:00; half of them at 13:00.
    assert Notification.objects.get(user=rita).grace_deadline == at(17)
    assert escalate(at(12, 45))["copied"] == 0
    assert escalate(at(13, 15))["copied"] == 1


def test_an_item_dealt_with_in_time_escalates_no_further(rule, rita, boss):
    task = TaskFactory(owner=rita, due_at=at(8))
    runner.run_job("notifications_daily", MONDAY)
    Task.objects.filter(pk=task.pk).update(status=Task.Status.DONE)

    assert escalate(at(10, 15)) == {"reminded": 0, "copied": 0}
    assert audited() == []


def test_the_levels_are_off_by_default(rita, boss):
    ReminderRuleFactory(name="Plain", object_kind="task", blocking=True, grace_period=8 * H)
    TaskFactory(owner=rita, due_at=at(8))
    runner.run_job("notifications_daily", MONDAY)

    assert escalate(at(13)) == {"reminded": 0, "copied": 0}


@pytest.mark.parametrize("people", [1, 5])
def test_a_run_costs_the_same_queries_whatever_the_data(
    rule, boss, people, django_assert_num_queries
):
    for n in range(people):
        rep = UserFactory(team=boss.team, manager=boss, email=f"rep{n}@example.com")
        TaskFactory(owner=rep, due_at=at(8))
    runner.run_job("notifications_daily", MONDAY)

    # The engine's ledger and lock; per level: claim, audit, and its writes (the users, the
    # outbox's three, the marks; the copies): 23 for one person as for five.
    with django_assert_num_queries(23):
        counts = escalate(at(10, 15))

    assert counts == {"reminded": people, "copied": people}


def test_an_item_raised_days_ahead_is_reminded_when_it_falls_due(rita, boss):
    ReminderRuleFactory(
        name="Task due",
        object_kind="task",
        lead_time=timedelta(days=3),
        blocking=True,
        grace_period=72 * H,
        remind_when_due=True,
    )
    TaskFactory(owner=rita, due_at=at(10) + timedelta(days=2))  # Wednesday 10:00
    runner.run_job("notifications_daily", MONDAY)  # raised on Monday, 52 hours ahead

    assert escalate(at(9, 45) + timedelta(days=2))["reminded"] == 0
    assert escalate(at(10, 15) + timedelta(days=2))["reminded"] == 1
