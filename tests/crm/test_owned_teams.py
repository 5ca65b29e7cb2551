"""A task's and an event's team is their owner's, a dispatch's account team its account's, kept
by the database (crm/triggers.py) through every way rows and their parents are written; a
manager's dashboard reads a team's tasks, events and dispatches through them."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import OperationalError, connection, models
from django.utils import timezone

from crm import triggers
from crm.models import Account, Dispatch, Event, Task, Team
from tests.clients import logged_in
from tests.factories import (
    AccountFactory,
    DispatchFactory,
    EventFactory,
    TaskFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Kind:
    model: type[models.Model]
    parent: str  # the foreign key the team comes through
    copy: str  # the column that holds it

    def parent_in(self, team: Team | None) -> models.Model:
        if self.parent == "owner":
            return UserFactory(role="rep", team=team)
        return AccountFactory(team=team)

    def row(self, team: Team | None, **fields) -> models.Model:
        factory = {Task: TaskFactory, Event: EventFactory, Dispatch: DispatchFactory}
        return factory[self.model](**{self.parent: self.parent_in(team), **fields})

    def fields_of(self, row: models.Model) -> dict:
        skip = {"id", self.copy, f"{self.parent}_id"}
        return {
            f.attname: getattr(row, f.attname)
            for f in row._meta.concrete_fields
            if f.attname not in skip
        }

    def teams(self, *rows: models.Model) -> list[int | None]:
        stored = dict(
            self.model._default_manager.filter(pk__in=[r.pk for r in rows]).values_list(
                "pk", self.copy
            )
        )
        return [stored[r.pk] for r in rows]

    def fresh(self, *rows: models.Model) -> list[int | None]:
        """What the team should be: the parent's, read now."""
        stored = dict(
            self.model._default_manager.filter(pk__in=[r.pk for r in rows]).values_list(
                "pk", f"{self.parent}__team_id"
            )
        )
        return [stored[r.pk] for r in rows]


KINDS = {
    "task": Kind(Task, "owner", "team_id"),
    "event": Kind(Event, "owner", "team_id"),
    "dispatch": Kind(Dispatch, "account", "account_team_id"),
}


@pytest.fixture(params=list(KINDS))
def kind(request) -> Kind:
    return KINDS[request.param]


@pytest.fixture
def south():
    return TeamFactory(name="South")


def test_a_new_row_takes_its_parents_team_however_it_is_written(kind, north):
    parent = kind.parent_in(north)
    created = kind.row(None, **{kind.parent: parent})
    template = kind.fields_of(kind.row(None))
    (bulk,) = kind.model._default_manager.bulk_create(
        [kind.model(**template, **{kind.parent: parent})]
    )
    assert kind.teams(created, bulk) == [north.pk, north.pk]


def test_a_dispatch_taken_off_its_account_has_no_account_team(north):
    dispatch = DispatchFactory(account=AccountFactory(team=north))
    assert KINDS["dispatch"].teams(dispatch) == [north.pk]
    Dispatch.objects.filter(pk=dispatch.pk).update(account=None)
    assert KINDS["dispatch"].teams(dispatch) == [None]


def test_a_row_written_before_its_parent_takes_its_team_once_it_is_there(kind, north):
    """Foreign keys are checked at commit: a row may name its parent before the parent is
    written, in the same transaction (an import); the parent, once inserted, gives it its
    team."""
    row = kind.row(north)
    model = type(getattr(row, kind.parent))
    early = model.objects.order_by("-pk").values_list("pk", flat=True)[0] + 1000
    kind.model._default_manager.filter(pk=row.pk).update(**{f"{kind.parent}_id": early})
    assert kind.teams(row) == [None]
    if model is Account:
        AccountFactory(id=early, team=north)
    else:
        UserFactory(id=early, role="rep", team=north)
    assert kind.teams(row) == [north.pk]


def test_a_parent_that_changes_team_takes_its_rows_along(kind, north, south):
    parent = kind.parent_in(north)
    mine, theirs = kind.row(None, **{kind.parent: parent}), kind.row(north)
    parent.team = south
    parent.save()
    assert kind.teams(mine, theirs) == [south.pk, north.pk]
    type(parent).objects.filter(pk=parent.pk).update(team=None)
    assert kind.teams(mine) == [None]
    with connection.cursor() as cursor:
        table = type(parent)._meta.db_table
        cursor.execute(f"UPDATE {table} SET team_id = %s WHERE id = %s", [north.pk, parent.pk])  # noqa: S608
    assert kind.teams(mine, theirs) == kind.fresh(mine, theirs) == [north.pk, north.pk]


def test_a_row_given_to_another_parent_takes_its_team(kind, north, south):
    row = kind.row(north)
    setattr(row, kind.parent, kind.parent_in(south))
    row.save()
    assert kind.teams(row) == [south.pk]
    kind.model._default_manager.filter(pk=row.pk).update(**{kind.parent: kind.parent_in(north)})
    assert kind.teams(row) == kind.fresh(row) == [north.pk]


def test_a_team_written_by_hand_is_put_right(kind, north, south):
    row = kind.row(north)
    kind.model._default_manager.filter(pk=row.pk).update(**{kind.copy: south.pk})
    assert kind.teams(row) == [north.pk]
    stale = kind.model._default_manager.get(pk=row.pk)
    setattr(stale, kind.copy, None)  # a stale instance saved whole writes every column
    stale.title = "Renamed"
    stale.save()
    assert kind.teams(row) == [north.pk]


def test_a_deleted_team_leaves_its_rows_with_no_team(kind, north):
    row = kind.row(north)
    Team.objects.filter(pk=north.pk).delete()
    assert kind.teams(row) == [None]


def test_the_migration_backfill_gives_rows_written_without_triggers_their_team(kind, north, south):
    row = kind.row(north)
    triggers.uninstall_owned(connection)
    try:
        kind.model._default_manager.filter(pk=row.pk).update(**{kind.copy: south.pk})
        assert kind.teams(row) == [south.pk]  # nothing put it right
        triggers.backfill_owned(connection)
    finally:
        triggers.install_owned(connection)
    assert kind.teams(row) == [north.pk]


@time_machine.travel(datetime(2026, 12, 7, 9, 0, tzinfo=UTC), tick=False)
def test_a_managers_dashboard_shows_the_teams_work_once_it_is_theirs(north, south):
    manager = UserFactory(username="mia", role="manager", team=south)
    rep = UserFactory(role="rep", team=north)
    account = AccountFactory(team=north)
    soon = timezone.now() + timedelta(hours=2)
    TaskFactory(owner=rep, title="Call Mona", due_at=soon)
    EventFactory(owner=rep, title="Visit Mona", start_at=soon, end_at=soon + timedelta(hours=1))
    DispatchFactory(account=account, title="Inspect Mona", due_at=soon)
    client = logged_in(manager)

    titles = ("Call Mona", "Visit Mona", "Inspect Mona")
    shown = client.get("/").content.decode()
    assert [t for t in titles if t in shown] == []

    rep.team = south
    rep.save()
    Account.objects.filter(pk=account.pk).update(team=south)
    shown = client.get("/").content.decode()
    assert [t for t in titles if t in shown] == list(titles)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite rebuilds tables to alter them")
def test_sqlite_can_rebuild_the_tables_the_owned_triggers_read(north):
    """SQLite will not rebuild crm_task while crm_user's trigger writes it: these triggers too
    go before a migrate and come back after it (crm.triggers.around_migrate)."""
    from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal

    def altered(length: int) -> tuple:
        old = Task._meta.get_field("title")
        new = models.CharField(max_length=length)
        new.set_attributes_from_name("title")
        new.model = Task
        return old, new

    with pytest.raises(OperationalError), connection.schema_editor() as editor:
        editor.alter_field(Task, *altered(201))
    emit_pre_migrate_signal(verbosity=0, interactive=False, db="default")
    with connection.schema_editor() as editor:
        editor.alter_field(Task, *altered(201))
        editor.alter_field(Task, *reversed(altered(201)))
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    task = TaskFactory(owner=UserFactory(role="rep", team=north))
    assert KINDS["task"].teams(task) == [north.pk]
