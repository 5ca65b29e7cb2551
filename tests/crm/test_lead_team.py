"""A lead's team is its owner's, kept by the database (crm/triggers.py) through every way leads
and people are written, and a manager's lead list and search read a team's leads through it."""

import pytest
from django.db import OperationalError, connection, models, transaction
from django.utils import timezone

from crm import triggers
from crm.models import RPH, Team, User
from tests.clients import logged_in
from tests.factories import LeadFactory, TeamFactory, UserFactory
from tests.locks import held_by_another_transaction

pytestmark = pytest.mark.django_db


@pytest.fixture
def south():
    return TeamFactory(name="South")


def teams_of(*leads: RPH) -> list[int | None]:
    ids = [lead.pk for lead in leads]
    stored = dict(RPH.objects.filter(pk__in=ids).values_list("pk", "team_id"))
    return [stored[pk] for pk in ids]


def fresh(*leads: RPH) -> list[int | None]:
    """What the team should be: the owner's, read now."""
    ids = [lead.pk for lead in leads]
    owners = dict(RPH.objects.filter(pk__in=ids).values_list("pk", "owner__team_id"))
    return [owners[pk] for pk in ids]


def test_a_new_lead_takes_its_owners_team_however_it_is_written(north):
    rep = UserFactory(role="rep", team=north)
    now = timezone.now()
    created = RPH.objects.create(name="Created", owner=rep, status_changed_at=now)
    bulk = RPH.objects.bulk_create([RPH(name="Bulk", owner=rep, status_changed_at=now)])[0]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO crm_rph (name, company, email, owner_id, status, status_changed_at)"
            " VALUES ('Raw', '', '', %s, 'new', %s)",
            [rep.pk, now],
        )
    raw = RPH.objects.get(name="Raw")
    unowned = LeadFactory(owner=None)
    assert teams_of(created, bulk, raw, unowned) == [north.pk, north.pk, north.pk, None]


def test_an_owner_who_changes_team_takes_their_leads_along(north, south):
    rep, colleague = UserFactory(role="rep", team=north), UserFactory(role="rep", team=north)
    mine, theirs = LeadFactory(owner=rep), LeadFactory(owner=colleague)
    rep.team = south
    rep.save()
    assert teams_of(mine, theirs) == [south.pk, north.pk]
    User.objects.filter(pk=rep.pk).update(team=None)
    assert teams_of(mine) == [None]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE crm_user SET team_id = %s WHERE id = %s", [north.pk, rep.pk])
    assert teams_of(mine, theirs) == fresh(mine, theirs) == [north.pk, north.pk]


def test_a_lead_given_to_someone_else_takes_their_team(north, south):
    lead = LeadFactory(owner=UserFactory(role="rep", team=north))
    lead.owner = UserFactory(role="rep", team=south)
    lead.save()
    assert teams_of(lead) == [south.pk]
    RPH.objects.filter(pk=lead.pk).update(owner=UserFactory(role="rep", team=north))
    assert teams_of(lead) == fresh(lead) == [north.pk]
    RPH.objects.filter(pk=lead.pk).update(owner=None)
    assert teams_of(lead) == [None]


def test_a_team_written_by_hand_is_put_right(north, south):
    lead = LeadFactory(owner=UserFactory(role="rep", team=north))
    RPH.objects.filter(pk=lead.pk).update(team=south)
    assert teams_of(lead) == [north.pk]
    stale = RPH.objects.get(pk=lead.pk)
    stale.team_id = None  # a stale instance saved whole writes every column
    stale.name = "Renamed"
    stale.save()
    assert teams_of(lead) == [north.pk]


def test_a_deleted_team_leaves_its_leads_with_no_team(north):
    lead = LeadFactory(owner=UserFactory(role="rep", team=north))
    Team.objects.filter(pk=north.pk).delete()
    assert teams_of(lead) == [None]


def test_the_migration_backfill_gives_leads_written_without_triggers_their_team(north, south):
    lead = LeadFactory(owner=UserFactory(role="rep", team=north))
    triggers.uninstall_leads(connection)
    try:
        RPH.objects.filter(pk=lead.pk).update(team=south)
        assert teams_of(lead) == [south.pk]  # nothing put it right
        triggers.backfill_leads(connection)
    finally:
        triggers.install_leads(connection)
    assert teams_of(lead) == [north.pk]


def test_a_manager_lists_and_finds_a_lead_once_its_owner_joins_their_team(north, south):
    manager = UserFactory(username="mia", role="manager", team=south)
    rep = UserFactory(role="rep", team=north)
    LeadFactory(owner=rep, name="Moving Mona")
    client = logged_in(manager)
    assert "Moving Mona" not in client.get("/leads/?q=mona").content.decode()
    assert "Moving Mona" not in client.get("/search/?q=mona").content.decode()
    rep.team = south
    rep.save()
    assert "Moving Mona" in client.get("/leads/?q=mona").content.decode()
    assert "Moving Mona" in client.get("/leads/").content.decode()
    assert "Moving Mona" in client.get("/search/?q=mona").content.decode()


def test_a_lead_written_before_its_owner_takes_their_team_once_they_are_there(north):
    with connection.cursor() as cursor:  # foreign keys are checked at commit: this order is legal
        cursor.execute("SELECT coalesce(max(id), 0) + 1000 FROM crm_user")
        (user_id,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO crm_rph (name, company, email, owner_id, status, status_changed_at)"
            " VALUES ('Early', '', '', %s, 'new', %s)",
            [user_id, timezone.now()],
        )
    UserFactory(id=user_id, role="rep", team=north)
    assert RPH.objects.get(name="Early").team_id == north.pk


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL")
def test_a_lead_written_while_its_owner_changes_team_waits_for_the_change(north, south):
    """The lead's trigger reads its owner FOR SHARE: while another transaction changes that
    person's team, the lead waits (here: gives up after 200 ms) instead of taking the old
    team; other people's leads do not wait."""
    rep, colleague = UserFactory(role="rep", team=north), UserFactory(role="rep", team=north)
    moving = "UPDATE crm_user SET team_id = %s WHERE id = %s"
    with held_by_another_transaction(moving, [south.pk, rep.pk]):
        LeadFactory(owner=colleague)  # another owner: no wait
        with pytest.raises(OperationalError, match="lock timeout"), transaction.atomic():
            LeadFactory(owner=rep)
    lead = LeadFactory(owner=rep)
    assert teams_of(lead) == [south.pk]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite rebuilds tables to alter them")
def test_sqlite_can_rebuild_the_tables_the_lead_triggers_read(north):
    """SQLite will not rebuild crm_rph while crm_user's trigger writes it: the leads' triggers
    too go before a migrate and come back after it (crm.triggers.around_migrate)."""
    from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal

    def altered(model, name: str, length: int) -> tuple:
        old = model._meta.get_field(name)
        new = models.CharField(max_length=length, blank=True)
        new.set_attributes_from_name(name)
        new.model = model
        return old, new

    with pytest.raises(OperationalError), connection.schema_editor() as editor:
        editor.alter_field(RPH, *altered(RPH, "company", 201))
    emit_pre_migrate_signal(verbosity=0, interactive=False, db="default")
    with connection.schema_editor() as editor:
        editor.alter_field(RPH, *altered(RPH, "company", 201))
        editor.alter_field(RPH, *reversed(altered(RPH, "company", 201)))
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    lead = LeadFactory(owner=UserFactory(role="rep", team=north))
    assert teams_of(lead) == [north.pk]
