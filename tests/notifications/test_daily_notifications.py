"""The daily job: rules configured by administrators turn objects about to expire into
notifications, once per object, user and date; done objects close theirs."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from crm import runner
from crm.models import Opportunity, Task
from notifications.jobs import notify_expiring
from notifications.models import DailySweep, Notification
from tests.factories import (
    AccountFactory,
    EventFactory,
    InvoiceFactory,
    OpportunityFactory,
    ReminderRuleFactory,
    TaskFactory,
    UserFactory,
)

AS_OF = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


@pytest.fixture
def boss(db):
    return UserFactory(username="boss", role="manager")


@pytest.fixture
def rita(boss):
    return UserFactory(username="rita", manager=boss)


def notified(**filters):
    return sorted(
        Notification.objects.filter(**filters).values_list("user__username", "title", "blocking")
    )


@pytest.mark.django_db
def test_tasks_due_within_the_lead_time_or_overdue_notify_their_owner(rita):
    ReminderRuleFactory(name="Task due", object_kind="task", lead_time=timedelta(hours=12))
    TaskFactory(owner=rita, title="Call Acme", due_at=AS_OF + timedelta(hours=11))
    TaskFactory(owner=rita, title="Old call", due_at=AS_OF - timedelta(days=3))
    TaskFactory(owner=rita, title="Next week", due_at=AS_OF + timedelta(days=7))
    TaskFactory(owner=rita, title="Done", due_at=AS_OF, status=Task.Status.DONE)

    counts = notify_expiring(AS_OF)

    assert counts == {"rules": 1, "created": 2, "closed": 0, "ranges": 1}
    assert notified() == [
        ("rita", "Task due: Call Acme", False),
        ("rita", "Task due: Old call", False),
    ]
    note = Notification.objects.get(title="Task due: Call Acme")
    assert note.expires_at == AS_OF + timedelta(hours=11) and note.visible_from == AS_OF


@pytest.mark.django_db
def test_re_running_a_day_creates_nothing(rita, django_assert_max_num_queries):
    ReminderRuleFactory(name="Task due", object_kind="task", notify_manager=True)
    TaskFactory(owner=rita, due_at=AS_OF)
    first = runner.run_job("notifications_daily", AS_OF)

    # The engine's ledger and lock, the folding of the dashboard's two rollups, the rules and
    # the working calendar's switch; on PostgreSQL the snapshot, the last run's record (read
    # and written), the triggers' check and the marks, of which there are none: no range is
    # read. SQLite keeps no record and reads
    # every range: each kind's span (two), and the one range of tasks (one INSERT per
    # recipient, the closing sweep's audit and UPDATE).
    postgresql = connection.vendor == "postgresql"
    with django_assert_max_num_queries(19 if postgresql else 35):
        again = runner.run_job("notifications_daily", AS_OF)

    assert first.counts["created"] == 2 and again.counts["created"] == 0
    assert again.counts["ranges"] == (0 if postgresql else 1)
    assert Notification.objects.count() == 2


@pytest.mark.django_db
def test_recipients_owner_manager_and_account_manager(rita, boss):
    am = UserFactory(username="alma")
    ReminderRuleFactory(
        name="Task due", object_kind="task", notify_manager=True, notify_account_manager=True
    )
    TaskFactory(owner=rita, title="T", account=AccountFactory(account_manager=am), due_at=AS_OF)
    TaskFactory(owner=boss, title="No manager", due_at=AS_OF)  # boss has no manager

    notify_expiring(AS_OF)

    assert [u for u, _, _ in notified(title="Task due: T")] == ["alma", "boss", "rita"]
    assert [u for u, _, _ in notified(title="Task due: No manager")] == ["boss"]


@pytest.mark.django_db
def test_rule_status_filters_and_opportunity_close_dates(rita):
    ReminderRuleFactory(
        name="Opportunity closing",
        object_kind="opportunity",
        statuses=["negotiation"],
        lead_time=timedelta(days=7),
    )
    OpportunityFactory(
        owner=rita, name="Hot", stage="negotiation", expected_close=date(2026, 12, 4)
    )
    OpportunityFactory(
        owner=rita, name="Cold", stage="prospecting", expected_close=date(2026, 12, 1)
    )
    OpportunityFactory(
        owner=rita, name="Later", stage="negotiation", expected_close=date(2026, 12, 6)
    )

    notify_expiring(AS_OF)

    assert notified() == [("rita", "Opportunity closing: Hot", False)]


@pytest.mark.django_db
def test_untouched_opportunities_raise_a_blocking_notification_with_a_grace_deadline(rita):
    ReminderRuleFactory(
        name="Opportunity closing",
        object_kind="opportunity",
        trigger="untouched",
        untouched_days=10,
        lead_time=timedelta(0),
        blocking=True,
        grace_period=timedelta(hours=24),
    )
    stale = OpportunityFactory(owner=rita, name="Stale")
    fresh = OpportunityFactory(owner=rita, name="Fresh")
    Opportunity.objects.filter(pk=stale.pk).update(updated_at=AS_OF - timedelta(days=11))
    Opportunity.objects.filter(pk=fresh.pk).update(updated_at=AS_OF - timedelta(days=2))

    notify_expiring(AS_OF)

    note = Notification.objects.get()
    assert (note.object_id, note.blocking) == (stale.pk, True)
    assert note.grace_deadline == AS_OF + timedelta(hours=24)
    assert note.expires_at == AS_OF - timedelta(days=1)


@pytest.mark.django_db
def test_events_and_invoices(rita):
    am = UserFactory(username="alma")
    ReminderRuleFactory(name="Event", object_kind="event", lead_time=timedelta(days=1))
    ReminderRuleFactory(name="Invoice due", object_kind="invoice", lead_time=timedelta(days=3))
    EventFactory(
        owner=rita,
        title="Demo",
        start_at=AS_OF + timedelta(hours=20),
        end_at=AS_OF + timedelta(hours=21),
    )
    EventFactory(
        owner=rita,
        title="Past",
        start_at=AS_OF - timedelta(days=2),
        end_at=AS_OF - timedelta(days=2) + timedelta(hours=1),
    )
    account = AccountFactory(account_manager=am)
    InvoiceFactory(
        account=account, number="F-1", voucher_date=date(2026, 11, 1), payment_terms_days=30
    )  # due Dec 1: within 3 days
    InvoiceFactory(
        account=account,
        number="F-2",
        voucher_date=date(2026, 11, 1),
        payment_terms_days=30,
        debt=Decimal(0),
    )  # paid

    notify_expiring(AS_OF)

    assert notified() == [("alma", "Invoice due: F-1", False), ("rita", "Event: Demo", False)]


@pytest.mark.django_db
def test_a_done_object_closes_its_notifications_and_a_new_due_date_is_a_new_episode(rita):
    ReminderRuleFactory(name="Task due", object_kind="task")
    task = TaskFactory(owner=rita, due_at=AS_OF)
    notify_expiring(AS_OF)

    Task.objects.filter(pk=task.pk).update(due_at=AS_OF + timedelta(hours=20))
    notify_expiring(AS_OF + timedelta(days=1))  # rescheduled: a new episode
    assert Notification.objects.filter(status="open").count() == 2

    Task.objects.filter(pk=task.pk).update(status=Task.Status.DONE)
    counts = notify_expiring(AS_OF + timedelta(days=2))

    assert counts["closed"] == 2 and counts["created"] == 0
    assert set(Notification.objects.values_list("status", flat=True)) == {"closed"}


@pytest.mark.django_db
def test_inactive_rules_do_nothing_and_dry_run_writes_nothing(rita):
    ReminderRuleFactory(name="Off", object_kind="task", active=False)
    active = ReminderRuleFactory(object_kind="task", name="active")
    TaskFactory(owner=rita, due_at=AS_OF)

    run = runner.run_job("notifications_daily", AS_OF, dry_run=True)

    assert run.counts == {"rules": 1, "created": 1, "closed": 0, "ranges": 1}
    assert not Notification.objects.exists()
    assert active.pk


@pytest.mark.django_db
def test_long_rule_and_object_names_are_cut_to_fit(rita):
    ReminderRuleFactory(name="R" * 120, object_kind="task")
    TaskFactory(owner=rita, title="T" * 200, due_at=AS_OF)

    notify_expiring(AS_OF)

    assert len(Notification.objects.get().title) == 300


def plan_nodes(sql: str) -> list[dict]:
    """Every node of the executed plan of `sql`, whose effects are rolled back."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        [[[plan]]] = cursor.fetchall()
        transaction.set_rollback(True)
    nodes, todo = [], [plan["Plan"]]
    while todo:
        node = todo.pop()
        nodes.append(node)
        todo += node.get("Plans", [])
    return nodes


@pytest.mark.django_db
def test_a_run_over_known_episodes_finds_out_from_indexes_that_it_has_nothing_to_do(rita, boss):
    """At a million objects of each kind this is the difference between 25 s and a few: no
    known episode is built and handed to ON CONFLICT, and the closing sweep anti-joins each
    kind's open notifications with its objects instead of testing five EXISTS per row. (A
    run that reads every range: the last complete run's record is gone, as for a run at
    another moment; a same-day re-run reads only what changed, tests/notifications/
    test_daily_changes.py.)"""
    if connection.vendor != "postgresql":
        pytest.skip("reads PostgreSQL's plans")
    ReminderRuleFactory(name="Task due", object_kind="task", notify_manager=True)
    ReminderRuleFactory(name="Closing", object_kind="opportunity", lead_time=timedelta(days=7))
    ReminderRuleFactory(
        name="Untouched",
        object_kind="opportunity",
        trigger="untouched",
        untouched_days=30,
        lead_time=timedelta(0),
        blocking=True,
    )
    ReminderRuleFactory(name="Event", object_kind="event")
    ReminderRuleFactory(name="Invoice", object_kind="invoice", notify_owner=True)
    for i in range(3):
        TaskFactory(owner=rita, due_at=AS_OF - timedelta(days=i))
        stale = OpportunityFactory(owner=rita, expected_close=date(2026, 12, 1))
        Opportunity.objects.filter(pk=stale.pk).update(updated_at=AS_OF - timedelta(days=40))
        EventFactory(owner=rita, start_at=AS_OF + timedelta(hours=2))
        InvoiceFactory(
            account=AccountFactory(account_manager=boss),
            voucher_date=date(2026, 10, 1),
            payment_terms_days=30,
            amount=Decimal(100),
            debt=Decimal(100),
        )
    assert notify_expiring(AS_OF)["created"] == 18

    DailySweep.objects.all().delete()
    with CaptureQueriesContext(connection) as rerun:
        assert notify_expiring(AS_OF) == {"rules": 5, "created": 0, "closed": 0, "ranges": 4}

    inserts = [q["sql"] for q in rerun if q["sql"].startswith('INSERT INTO "notifications_notif')]
    sweeps = [q["sql"] for q in rerun if q["sql"].startswith("UPDATE")]
    assert len(inserts) == 6 and sweeps
    for sql in inserts:
        [insert] = [n for n in plan_nodes(sql) if n["Node Type"] == "ModifyTable"]
        assert insert["Conflicting Tuples"] == 0, sql
    for sql in sweeps:
        assert not [n for n in plan_nodes(sql) if "Subplan Name" in n], sql
