"""A same-day re-run of notifications_daily reads only what changed since the last complete
run (notifications.changes), and ends exactly where a run over everything would: after each
kind of change, the re-run does the change's work, and a run that reads every range then
finds nothing left to do."""

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from crm import runner
from crm.models import Dispatch, Event, Task
from finance.models import Invoice
from notifications import changes, jobs
from notifications.jobs import notify_expiring
from notifications.models import DailySweep, Notification, ObjectChange, ReminderRule
from notifications.services import add_reminder, close_done
from tests.factories import (
    AccountFactory,
    DispatchFactory,
    EventFactory,
    InvoiceFactory,
    OpportunityFactory,
    ReminderRuleFactory,
    TaskFactory,
    UserFactory,
)

AS_OF = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
FAR = 250_000  # an id in another range than the first ones
postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the marks are PostgreSQL triggers'"
)


def everything_again() -> dict:
    """A run that reads every range (as one at another moment would), at the same moment."""
    DailySweep.objects.all().delete()
    return notify_expiring(AS_OF)


@pytest.fixture
def rules(db):
    return [
        ReminderRuleFactory(name="Task due", object_kind="task", notify_manager=True),
        ReminderRuleFactory(
            name="Closing",
            object_kind="opportunity",
            lead_time=timedelta(days=7),
            notify_manager=True,
        ),
        ReminderRuleFactory(name="Event", object_kind="event"),
        ReminderRuleFactory(name="Invoice", object_kind="invoice"),
        ReminderRuleFactory(name="Dispatch", object_kind="dispatch"),
    ]


@pytest.fixture
def world(rules, rita, boss):
    """One object of each kind near the start of the ids and one far from it, each due."""
    alma = UserFactory(username="alma")  # the opportunities' account manager
    made = {}
    for pk in (None, FAR):
        ids = {} if pk is None else {"id": pk}
        made[pk] = {
            "task": TaskFactory(owner=rita, due_at=AS_OF, **ids),
            "opportunity": OpportunityFactory(
                owner=rita,
                account=AccountFactory(account_manager=alma),
                expected_close=date(2026, 11, 30),
                **ids,
            ),
            "event": EventFactory(
                owner=rita,
                start_at=AS_OF + timedelta(hours=2),
                end_at=AS_OF + timedelta(hours=3),
                **ids,
            ),
            "invoice": InvoiceFactory(
                account=AccountFactory(account_manager=boss),
                voucher_date=date(2026, 10, 1),
                payment_terms_days=30,
                amount=Decimal(100),
                debt=Decimal(100),
                **ids,
            ),
            "dispatch": DispatchFactory(owner=rita, due_at=AS_OF - timedelta(hours=5), **ids),
        }
    first = notify_expiring(AS_OF)
    assert first["created"] == 14
    return made


def test_a_re_run_with_nothing_changed_reads_no_range_on_postgresql(world):
    again = notify_expiring(AS_OF)

    assert again["created"] == again["closed"] == 0
    # SQLite keeps no marks: it reads every range (three a kind here, from the first id to FAR).
    assert again["ranges"] == (0 if connection.vendor == "postgresql" else 15)
    assert not ObjectChange.objects.exists()


@postgresql
def test_a_change_is_read_in_its_own_range_only(world, rita):
    Task.objects.filter(pk=FAR).update(due_at=AS_OF - timedelta(days=1))  # a new episode

    again = notify_expiring(AS_OF)

    assert again == {"rules": 5, "created": 2, "closed": 0, "ranges": 1}
    assert ObjectChange.objects.count() == 0
    assert everything_again()["created"] == 0


@postgresql
def test_changed_blocks_close_to_each_other_are_read_as_one_range(world, rita):
    near, far = FAR + changes.GAP, FAR + 3 * changes.GAP  # FAR's block and these: 2 ranges
    for pk in (near, far):
        TaskFactory(owner=rita, due_at=AS_OF + timedelta(days=9), id=pk)
    notify_expiring(AS_OF)

    Task.objects.filter(pk__in=(FAR, near, far)).update(due_at=AS_OF - timedelta(hours=2))
    again = notify_expiring(AS_OF)

    assert again["created"] == 6 and again["ranges"] == 2
    assert everything_again()["created"] == 0


def _task_created(world, rita, boss):
    TaskFactory(owner=rita, due_at=AS_OF, id=FAR + 1)


def _task_due_earlier_in_bulk(world, rita, boss):
    Task.objects.filter(pk__gte=FAR).update(due_at=AS_OF - timedelta(hours=1))


def _task_done_by_raw_sql(world, rita, boss):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE crm_task SET status = 'done' WHERE id = %s", [FAR])


def _task_deleted(world, rita, boss):
    Task.objects.filter(pk=FAR).delete()


def _opportunity_won(world, rita, boss):
    world[FAR]["opportunity"].stage = "won"
    world[FAR]["opportunity"].save()


def _event_moved_earlier(world, rita, boss):
    Event.objects.filter(pk=FAR).update(start_at=AS_OF + timedelta(hours=1))


def _invoice_paid(world, rita, boss):
    Invoice.objects.filter(pk=FAR).update(debt=Decimal(0))


def _dispatch_done(world, rita, boss):
    Dispatch.objects.filter(pk=FAR).update(status=Dispatch.Status.DONE)


def _owner_gets_another_manager(world, rita, boss):
    rita.manager = UserFactory(username="second", role="manager")
    rita.save()


def _account_gets_another_manager(world, rita, boss):
    account = world[FAR]["invoice"].account
    account.account_manager = UserFactory(username="alma")
    account.save()


def _task_given_another_id(world, rita, boss):
    Task.objects.filter(pk=FAR).update(id=FAR + 7)


def truncate(table: str) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's pending FK checks
            cursor.execute(f"TRUNCATE {table} CASCADE")
        else:
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - the tests' own table names


def _task_table_truncated(world, rita, boss):
    truncate("crm_task")


def _notification_deleted(world, rita, boss):
    Notification.objects.filter(object_kind="task", object_id=FAR, user=boss).delete()


def _notifications_truncated(world, rita, boss):
    truncate("notifications_notification")


def _reminder_about_a_task_gone(world, rita, boss):
    add_reminder(rita, "task", FAR + 2, AS_OF, "look again", AS_OF)  # no such task


def _notification_moved_to_another_date(world, rita, boss):
    about = Notification.objects.filter(object_kind="task", object_id=FAR, user=boss)
    about.update(expires_at=AS_OF - timedelta(days=30))  # the episode of AS_OF: not notified


def _resolved_notification_moved_to_another_date(world, rita, boss):
    about = Notification.objects.filter(object_kind="task", object_id=FAR, user=boss)
    about.update(status=Notification.Status.RESOLVED)
    about.update(expires_at=AS_OF - timedelta(days=30))


def _notification_opened_again(world, rita, boss):
    Task.objects.filter(pk=FAR).update(status="done")
    notify_expiring(AS_OF)  # closes the two about it
    Notification.objects.filter(object_kind="task", object_id=FAR).update(status="open")


def _rule_edited(world, rita, boss):
    ReminderRule.objects.filter(name="Closing").update(notify_account_manager=True)


# (the change, what the re-run that follows it does: created, closed)
CHANGES: list[tuple[Callable, tuple[int, int]]] = [
    (_task_created, (2, 0)),
    (_task_due_earlier_in_bulk, (2, 0)),
    (_task_done_by_raw_sql, (0, 2)),
    (_task_deleted, (0, 2)),
    (_opportunity_won, (0, 2)),
    (_event_moved_earlier, (1, 0)),
    (_invoice_paid, (0, 1)),
    (_dispatch_done, (0, 1)),
    (_owner_gets_another_manager, (4, 0)),
    (_account_gets_another_manager, (1, 0)),
    (_task_given_another_id, (2, 2)),
    (_task_table_truncated, (0, 4)),
    (_notification_deleted, (1, 0)),
    (_notification_moved_to_another_date, (1, 0)),
    (_resolved_notification_moved_to_another_date, (1, 0)),
    (_notifications_truncated, (14, 0)),
    (_reminder_about_a_task_gone, (0, 1)),
    (_notification_opened_again, (0, 2)),
    (_rule_edited, (2, 0)),  # both opportunities' account manager: every range is read
]


@pytest.mark.parametrize(("change", "effect"), CHANGES, ids=[c.__name__[1:] for c, _ in CHANGES])
def test_after_each_kind_of_change_the_re_run_ends_where_reading_everything_would(
    world, rita, boss, change, effect
):
    change(world, rita, boss)

    again = notify_expiring(AS_OF)

    assert (again["created"], again["closed"]) == effect
    rest = everything_again()
    assert (rest["created"], rest["closed"]) == (0, 0)


@postgresql
def test_a_rule_edited_reads_every_range(world):
    ReminderRule.objects.filter(name="Event").update(lead_time=timedelta(days=2))

    assert notify_expiring(AS_OF)["ranges"] == everything_again()["ranges"] > 0


@postgresql
def test_a_run_at_another_moment_that_stops_half_way_leaves_the_next_to_read_everything(
    world, monkeypatch
):
    """Its writes are not marked, and it may have written for its own moment (a notification
    the next run at AS_OF would have closed): only a run that reads everything may follow."""

    def fails_on_events(as_of, kind, lo, hi):
        if kind == "event":
            raise DatabaseError("the disk is full")
        return close_done(as_of, kind, lo, hi)

    monkeypatch.setattr(jobs, "close_done", fails_on_events)
    with pytest.raises(DatabaseError):
        notify_expiring(AS_OF - timedelta(days=1))
    monkeypatch.undo()

    assert not DailySweep.objects.exists()
    assert notify_expiring(AS_OF)["ranges"] == everything_again()["ranges"] > 0


@postgresql
@pytest.mark.django_db(transaction=True)
def test_the_runs_own_writes_mark_nothing():
    """Each range's writes commit on their own, after the run's snapshot: were they marked,
    their marks would outlive the run, and the next re-run would read those ranges again."""
    ReminderRuleFactory(name="Task due", object_kind="task", notify_manager=True)
    TaskFactory(owner=UserFactory(manager=UserFactory(role="manager")), due_at=AS_OF)
    TaskFactory(id=FAR, owner=UserFactory(), due_at=AS_OF)

    assert notify_expiring(AS_OF)["created"] == 3

    assert not ObjectChange.objects.exists()
    assert notify_expiring(AS_OF)["ranges"] == 0


@postgresql
def test_a_dry_run_keeps_the_marks_and_the_last_runs_record(world):
    Task.objects.filter(pk=FAR).update(due_at=AS_OF - timedelta(days=2))

    same_day = runner.run_job("notifications_daily", AS_OF, dry_run=True)
    next_day = runner.run_job("notifications_daily", AS_OF + timedelta(days=1), dry_run=True)

    assert same_day.counts["created"] == 2 and next_day.counts["ranges"] > 0
    assert ObjectChange.objects.filter(kind="task", first_id=FAR - FAR % changes.BLOCK).exists()
    assert DailySweep.objects.get().as_of == AS_OF
    assert notify_expiring(AS_OF)["created"] == 2


@postgresql
def test_without_its_triggers_a_re_run_reads_everything(world):
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER crm_task_marks_update ON crm_task")

    assert notify_expiring(AS_OF)["ranges"] == everything_again()["ranges"] > 0


@postgresql
@pytest.mark.django_db(transaction=True)
def test_a_change_committed_while_the_run_reads_waits_for_the_next(monkeypatch):
    """A writer's transaction, open when the run takes its snapshot, commits after the run
    read its range and before it forgets the marks it saw: the run did not see that change,
    so its mark must stay, and the next re-run does its work."""
    rita = UserFactory(username="rita")
    ReminderRuleFactory(name="Task due", object_kind="task")
    task = TaskFactory(owner=rita, due_at=AS_OF + timedelta(days=5))
    assert notify_expiring(AS_OF)["created"] == 0
    wrote, release = threading.Event(), threading.Event()

    def writer() -> None:
        try:
            with transaction.atomic():
                Task.objects.filter(pk=task.pk).update(due_at=AS_OF)
                wrote.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    finish = changes.Sweep.finish

    def finish_once_the_writer_committed(sweep: changes.Sweep) -> None:
        release.set()
        thread.join(30)
        finish(sweep)

    monkeypatch.setattr(changes.Sweep, "finish", finish_once_the_writer_committed)
    thread.start()
    assert wrote.wait(30)
    during = notify_expiring(AS_OF)
    monkeypatch.undo()

    assert during["created"] == 0 and not thread.is_alive()
    assert ObjectChange.objects.filter(kind="task").exists()
    assert notify_expiring(AS_OF) == {"rules": 1, "created": 1, "closed": 0, "ranges": 1}
    assert not ObjectChange.objects.exists()
