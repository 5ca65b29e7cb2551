"""A contact's team is its account's, kept by the database (crm/triggers.py) through every way
contacts and accounts are written, and the contact list reads a team's contacts through it."""

import pytest
from django.db import OperationalError, connection, models, transaction

from crm import triggers
from crm.models import Account, Contact, Team
from tests.clients import logged_in
from tests.factories import AccountFactory, ContactFactory, TeamFactory, UserFactory
from tests.locks import held_by_another_transaction

pytestmark = pytest.mark.django_db


@pytest.fixture
def north():
    return TeamFactory(name="North")


@pytest.fixture
def south():
    return TeamFactory(name="South")


def teams_of(*contacts: Contact) -> list[int | None]:
    ids = [c.pk for c in contacts]
    stored = dict(Contact.objects.filter(pk__in=ids).values_list("pk", "team_id"))
    return [stored[pk] for pk in ids]


def fresh(*contacts: Contact) -> list[int | None]:
    """What the team should be: the account's, read now."""
    ids = [c.pk for c in contacts]
    accounts = dict(Contact.objects.filter(pk__in=ids).values_list("pk", "account__team_id"))
    return [accounts[pk] for pk in ids]


def test_a_new_contact_takes_its_accounts_team_however_it_is_written(north):
    account = AccountFactory(team=north)
    created = Contact.objects.create(account=account, name="Created")
    bulk = Contact.objects.bulk_create([Contact(account=account, name="Bulk")])[0]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO crm_contact (account_id, name, email, phone, status, status_reason)"
            " VALUES (%s, 'Raw', '', '', 'active', '')",
            [account.pk],
        )
    raw = Contact.objects.get(name="Raw")
    assert teams_of(created, bulk, raw) == [north.pk] * 3


def test_an_account_that_changes_team_takes_its_contacts_along(north, south):
    account, other = AccountFactory(team=north), AccountFactory(team=north)
    mine, theirs = ContactFactory(account=account), ContactFactory(account=other)
    account.team = south
    account.save()
    assert teams_of(mine, theirs) == [south.pk, north.pk]
    Account.objects.filter(pk=account.pk).update(team=None)
    assert teams_of(mine) == [None]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE crm_account SET team_id = %s WHERE id = %s", [north.pk, account.pk])
    assert teams_of(mine, theirs) == fresh(mine, theirs) == [north.pk, north.pk]


def test_a_contact_moved_to_another_account_takes_its_team(north, south):
    contact = ContactFactory(account=AccountFactory(team=north))
    southern = AccountFactory(team=south)
    contact.account = southern
    contact.save()
    assert teams_of(contact) == [south.pk]
    Contact.objects.filter(pk=contact.pk).update(account=AccountFactory(team=north))
    assert teams_of(contact) == fresh(contact) == [north.pk]


def test_a_team_written_by_hand_is_put_right(north, south):
    contact = ContactFactory(account=AccountFactory(team=north))
    Contact.objects.filter(pk=contact.pk).update(team=south)
    assert teams_of(contact) == [north.pk]
    stale = Contact.objects.get(pk=contact.pk)
    stale.team_id = None  # a stale instance saved whole writes every column
    stale.name = "Renamed"
    stale.save()
    assert teams_of(contact) == [north.pk]


def test_a_deleted_team_leaves_its_contacts_with_no_team(north):
    contact = ContactFactory(account=AccountFactory(team=north))
    Team.objects.filter(pk=north.pk).delete()
    assert teams_of(contact) == [None]


def test_the_migration_backfill_gives_contacts_written_without_triggers_their_team(north, south):
    contact = ContactFactory(account=AccountFactory(team=north))
    triggers.uninstall(connection)
    try:
        Contact.objects.filter(pk=contact.pk).update(team=south)
        assert teams_of(contact) == [south.pk]  # nothing put it right
        triggers.backfill(connection)
    finally:
        triggers.install(connection)
    assert teams_of(contact) == [north.pk]


def test_a_rep_lists_a_contact_once_its_account_joins_their_team(north, south):
    sam = UserFactory(username="sam", role="rep", team=south)
    account = AccountFactory(team=north)
    ContactFactory(account=account, name="Moving Mona")
    client = logged_in(sam)
    assert "Moving Mona" not in client.get("/contacts/?q=mona").content.decode()
    account.team = south
    account.save()
    assert "Moving Mona" in client.get("/contacts/?q=mona").content.decode()
    assert "Moving Mona" in client.get("/contacts/").content.decode()


def test_a_contact_written_before_its_account_takes_its_team_once_the_account_is_there(north):
    with connection.cursor() as cursor:  # foreign keys are checked at commit: this order is legal
        cursor.execute("SELECT coalesce(max(id), 0) + 1000 FROM crm_account")
        (account_id,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO crm_contact (account_id, name, email, phone, status, status_reason)"
            " VALUES (%s, 'Early', '', '', 'active', '')",
            [account_id],
        )
        cursor.execute(
            "INSERT INTO crm_account (id, name, team_id, created_at) VALUES (%s, 'Late', %s, %s)",
            [account_id, north.pk, "2026-01-01T00:00:00+00:00"],
        )
    assert Contact.objects.get(name="Early").team_id == north.pk


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL")
def test_a_contact_written_while_its_account_changes_team_waits_for_the_change(north, south):
    """The contact's trigger reads its account FOR SHARE: while another transaction changes
    that account's team, the contact waits (here: gives up after 200 ms) instead of taking the
    old team; contacts of other accounts do not wait."""
    account, other = AccountFactory(team=north), AccountFactory(team=north)
    moving = "UPDATE crm_account SET team_id = %s WHERE id = %s"
    with held_by_another_transaction(moving, [south.pk, account.pk]):
        ContactFactory(account=other)  # another account: no wait
        with pytest.raises(OperationalError, match="lock timeout"), transaction.atomic():
            ContactFactory(account=account)
    contact = ContactFactory(account=account)
    assert teams_of(contact) == [south.pk]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite rebuilds tables to alter them")
def test_sqlite_can_rebuild_the_tables_the_triggers_read(north):
    """SQLite alters a column by copying the table, dropping it and renaming the copy, and
    refuses while a trigger of another table reads it: every app's triggers go before a
    migrate and come back after it (crm.triggers.around_migrate)."""
    from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal

    def altered(model, length: int) -> tuple:
        old = model._meta.get_field("name")
        new = models.CharField(max_length=length)
        new.set_attributes_from_name("name")
        new.model = model
        return old, new

    with pytest.raises(OperationalError), connection.schema_editor() as editor:
        editor.alter_field(Account, *altered(Account, 201))
    emit_pre_migrate_signal(verbosity=0, interactive=False, db="default")
    with connection.schema_editor() as editor:
        for model in (Account, Contact):
            editor.alter_field(model, *altered(model, 201))
            editor.alter_field(model, *reversed(altered(model, 201)))
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    contact = ContactFactory(account=AccountFactory(team=north))
    assert teams_of(contact) == [north.pk]
