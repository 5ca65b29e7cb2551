"""The dashboard's rollups (crm/rollups.py) equal a fresh count after every way opportunities
and tasks are written: pages and the ORM, bulk updates, raw SQL, deletes, a job's set-based
writes, folding; and the dashboard's pipeline and task totals read from them equal counts of
the records, for a rep, a manager and an administrator, on either side of midnight in their
own time zone and in UTC."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection, connections
from django.db.models import Sum

from crm import rollups
from crm.models import Opportunity, OwnerPipeline, OwnerTaskDay, Task
from crm.visibility import mine
from parc.jobs import generate_parc_visits
from tests.clients import logged_in
from tests.factories import OpportunityFactory, TaskFactory, TeamFactory, UserFactory
from tests.parc.conftest import AgreementFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _fresh(rollup: rollups.Rollup) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(rollup.fresh(connection.vendor))
        return {tuple(str(v) for v in row[:2]): _number(row[2:]) for row in cursor.fetchall()}


def _number(values) -> tuple:
    return tuple(Decimal(str(v)).quantize(Decimal("0.01")) for v in values)


def _kept(model, key: tuple[str, str], sums: tuple[str, ...]) -> dict:
    rows = model.objects.values(*key).annotate(**{f"s_{s}": Sum(s) for s in sums})
    kept = {tuple(str(row[k]) for k in key): _number(row[f"s_{s}"] for s in sums) for row in rows}
    return {k: v for k, v in kept.items() if any(v)}  # a key that nets to nothing is none


def assert_kept() -> None:
    pipeline = _kept(OwnerPipeline, ("owner_id", "stage"), ("opportunities", "amount"))
    assert pipeline == _fresh(rollups.PIPELINE)
    days = _kept(OwnerTaskDay, ("owner_id", "due_day"), ("tasks",))
    assert days == _fresh(rollups.TASK_DAYS)


@pytest.fixture
def people():
    north, south = TeamFactory(name="North"), TeamFactory(name="South")
    return (
        UserFactory(username="ana", role="rep", team=north),
        UserFactory(username="bo", role="rep", team=north),
        UserFactory(username="cy", role="rep", team=south),
    )


def test_every_way_of_writing_opportunities_keeps_the_pipeline(people):
    ana, bo, cy = people
    first = OpportunityFactory(owner=ana, stage="proposal", amount=Decimal("100.50"))
    OpportunityFactory(owner=bo, stage="prospecting", amount=7)
    assert_kept()
    assert _fresh(rollups.PIPELINE)  # something to compare

    Opportunity.objects.bulk_create(
        [
            Opportunity(name=f"o{i}", owner=cy, account=first.account, amount=i, expected_close=NOW)
            for i in range(5)
        ]
    )
    assert_kept()
    first.stage = "negotiation"
    first.save()
    assert_kept()
    rows = OwnerPipeline.objects.count()
    Opportunity.objects.filter(pk=first.pk).update(name="renamed")  # not in the sums: no row
    assert OwnerPipeline.objects.count() == rows
    Opportunity.objects.filter(owner=cy).update(owner=ana, amount=Decimal("3.25"))
    assert_kept()
    Opportunity.objects.filter(stage="prospecting").update(stage="won")
    assert_kept()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE crm_opportunity SET amount = amount * 2 WHERE owner_id = %s", [bo.pk]
        )
        cursor.execute(
            "INSERT INTO crm_opportunity (name, owner_id, account_id, stage, amount,"
            " expected_close, updated_at) SELECT name || ' copy', owner_id, account_id, stage,"
            " amount, expected_close, updated_at FROM crm_opportunity"
        )
    assert_kept()
    Opportunity.objects.filter(owner=bo).delete()
    first.delete()
    assert_kept()

    before = OwnerPipeline.objects.count()
    rollups.compact(connection)
    assert OwnerPipeline.objects.count() < before
    assert_kept()


def test_every_way_of_writing_tasks_keeps_the_due_days(people):
    ana, bo, cy = people
    task = TaskFactory(owner=ana, due_at=NOW)
    TaskFactory(owner=bo, due_at=NOW + timedelta(days=2))
    TaskFactory(owner=cy, due_at=NOW, status="done")  # not open: in no day
    assert_kept()
    assert OwnerTaskDay.objects.filter(owner=ana).aggregate(n=Sum("tasks"))["n"] == 1

    task.due_at = NOW.replace(hour=23, minute=59) + timedelta(minutes=2)  # the next UTC day
    task.save()
    assert_kept()
    task.status = "done"
    task.save()
    assert_kept()
    task.status = "open"
    task.save()
    Task.objects.filter(owner=bo).update(owner=cy, due_at=NOW - timedelta(days=40))
    assert_kept()
    Task.objects.filter(owner=cy).update(status="done")
    assert_kept()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE crm_task SET status = 'open' WHERE owner_id = %s", [cy.pk])
    assert_kept()
    Task.objects.filter(owner=cy).delete()
    assert_kept()
    rollups.compact(connection)
    assert_kept()


@time_machine.travel(datetime(2027, 1, 3, 12, 0, tzinfo=UTC), tick=False)
def test_a_jobs_set_based_writes_keep_the_rollups(settings):
    # parc_generate writes opportunities and tasks for every due visit at once.
    for _ in range(3):
        AgreementFactory()
    counts = generate_parc_visits(datetime(2027, 1, 4, 5, 0, tzinfo=UTC))

    assert counts["opportunities"] == 3 and counts["tasks"] == 6
    assert_kept()
    assert sum(v[0] for v in _fresh(rollups.PIPELINE).values()) == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE: PostgreSQL")
def test_a_truncate_empties_the_rollups(people):
    OpportunityFactory(owner=people[0])
    TaskFactory(owner=people[0], due_at=NOW)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE crm_opportunity, crm_task CASCADE")

    assert not OwnerPipeline.objects.exists() and not OwnerTaskDay.objects.exists()


def test_rebuilding_gives_the_same_sums(people):
    OpportunityFactory(owner=people[0], amount=5)
    TaskFactory(owner=people[1], due_at=NOW)
    expected = (_fresh(rollups.PIPELINE), _fresh(rollups.TASK_DAYS))

    rollups.rebuild(connection)

    assert_kept()
    assert (_fresh(rollups.PIPELINE), _fresh(rollups.TASK_DAYS)) == expected
    assert OwnerPipeline.objects.count() == len(expected[0])


# The dashboard's totals, from the rollups, against counts of the records.

ZONES = ["Pacific/Auckland", "America/Los_Angeles", ""]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("role", ["rep", "manager", "admin"])
def test_the_dashboards_totals_are_counts_of_the_records(people, zone, role, settings):
    ana, bo, cy = people
    viewer = {
        "rep": ana,
        "manager": UserFactory(username="max", role="manager", team=ana.team),
        "admin": UserFactory(username="ada", role="admin", is_staff=True, is_superuser=True),
    }[role]
    viewer.time_zone = zone
    viewer.save()
    # Tasks every 90 minutes from three days back to two ahead: some on each side of the
    # viewer's midnight and of UTC's.
    for i, owner in enumerate([ana, bo, cy] * 27):
        due_at = NOW - timedelta(days=3) + timedelta(minutes=90 * i)
        TaskFactory(owner=owner, due_at=due_at, status="done" if i % 5 == 0 else "open")
        OpportunityFactory(owner=owner, stage=["proposal", "won", "prospecting"][i % 3], amount=i)

    with time_machine.travel(NOW, tick=False):
        page = logged_in(viewer).get("/")

    tasks = mine(viewer, Task.objects.filter(status="open"))
    card = page.context["tasks"]
    midnight = NOW.astimezone(ZoneInfo(zone or settings.TIME_ZONE)).replace(hour=0, minute=0)
    assert card.total == tasks.filter(due_at__lt=midnight + timedelta(days=1)).count()
    assert card.overdue == tasks.filter(due_at__lt=midnight).count()
    assert 0 < card.overdue < card.total
    opportunities = mine(viewer, Opportunity.objects.filter(stage__in=Opportunity.OPEN_STAGES))
    pipeline = page.context["pipeline"]
    assert pipeline["count"] == opportunities.count() > 0
    amounts = {b["label"]: b["total"] for b in pipeline["bars"]}
    assert amounts["Proposal"] == sum(o.amount for o in opportunities.filter(stage="proposal"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE: PostgreSQL")
def test_a_truncate_while_a_fold_runs_leaves_nothing_behind(people):
    # The fold deletes every row and inserts their sums; a TRUNCATE waiting on its row locks
    # must not delete with a snapshot from before the fold committed (a review's race).
    for day in range(5):
        TaskFactory(owner=people[0], due_at=NOW + timedelta(days=day))
    folding = connections.create_connection("default")
    truncating = connections.create_connection("default")
    try:
        folding.set_autocommit(False)
        with folding.cursor() as cursor:
            for statement in rollups.TASK_DAYS.compact("postgresql"):
                cursor.execute(statement)
        with truncating.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        truncating.inc_thread_sharing()
        done = threading.Thread(
            target=lambda: truncating.cursor().execute("TRUNCATE crm_task CASCADE")
        )
        done.start()
        with connection.cursor() as cursor:  # until the TRUNCATE waits for the fold
            waiting = None
            while waiting != "Lock" and done.is_alive():
                cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
                waiting = cursor.fetchone()[0]
        folding.commit()
        done.join()
    finally:
        folding.close()
        truncating.dec_thread_sharing()
        truncating.close()

    assert not Task.objects.exists()
    assert not OwnerTaskDay.objects.exists()
