"""Indexes on the big tables (contacts, accounts, invoices, opportunities) are built without
locking them: concurrently on PostgreSQL, outside a transaction, and built again after a build
that was interrupted; plainly on SQLite."""

import importlib
import random

import pytest
from django.core.validators import validate_email
from django.db import IntegrityError, connection

from crm.indexes import AddIndexWithoutLocking, drop_invalid
from crm.models import Contact
from tests.factories import AccountFactory

MIGRATIONS = [
    "crm.migrations.0007_list_indexes_without_locking",
    "crm.migrations.0009_contact_team_backfill",
    "crm.migrations.0011_rph_owner_status_index",
    "crm.migrations.0016_lead_team_backfill",
    "crm.migrations.0017_search_statistics_and_contact_walks",
    "crm.migrations.0024_account_name_index_holds_the_key",
    "crm.migrations.0026_opportunity_name_index",
    "crm.migrations.0027_rph_team_activity_holds_the_search",
    "finance.migrations.0004_invoice_list_order",
    "finance.migrations.0006_invoice_team_backfill_and_aging",
    "mailsync.migrations.0011_mailbox_copy_sort_at_filled",
]
BUILT = {
    "contact_name_email",
    "contact_status_name",
    "contact_account_name",
    "account_name",
    "account_team_name",
    "account_created",
    "account_team_created",
    "account_manager_name",
    "invoice_list_order",
    "contact_team_name_email",
    "contact_team_status_name",
    "invoice_team_list_order",
    "invoice_team_unpaid_due",
    "mailboxcopy_newest",
    "rph_owner_status_activity",
    "rph_team_activity_search",
    "opportunity_name",
}
TRIGRAM = {
    "contact_team_search",
    "contact_tail_search",
    "crm_account_name_trgm",
    "crm_contact_name_trgm",
    "crm_contact_email_trgm",
    "crm_opportunity_name_trgm",
    "finance_invoice_number_trgm",
}
PREFIX = {
    "crm_account_name_start",
    "crm_contact_name_start",
    "crm_contact_email_start",
    "crm_opportunity_name_prefix",
    "crm_rph_name_prefix",
    "crm_rph_company_prefix",
    "crm_rph_email_prefix",
}
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrent index builds: PostgreSQL"
)


@pytest.mark.parametrize("name", MIGRATIONS)
def test_the_migrations_build_their_indexes_outside_a_transaction(name):
    migration = importlib.import_module(name).Migration

    assert migration.atomic is False
    indexes = [op for op in migration.operations if op.__class__.__name__.startswith("AddIndex")]
    assert indexes and all(isinstance(op, AddIndexWithoutLocking) for op in indexes)


@pytest.mark.django_db
def test_every_index_is_there_and_valid():
    with connection.cursor() as cursor:
        names = {
            index
            for table in (
                "crm_contact",
                "crm_account",
                "finance_invoice",
                "crm_opportunity",
                "mailsync_mailboxcopy",
                "crm_rph",
            )
            for index in connection.introspection.get_constraints(cursor, table)
        }
    assert names >= BUILT
    if connection.vendor == "postgresql":
        assert names >= TRIGRAM | PREFIX
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname FROM pg_class JOIN pg_index ON pg_class.oid = indexrelid"
                " WHERE relname = ANY(%s) AND NOT indisvalid",
                [sorted(BUILT | TRIGRAM | PREFIX)],
            )
            assert cursor.fetchall() == []


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_an_interrupted_build_is_dropped_to_be_built_again():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE half_built (x int)")
        cursor.execute("INSERT INTO half_built VALUES (1), (1)")
        try:
            # A concurrent build that fails half-way leaves an invalid index behind.
            with pytest.raises(IntegrityError, match="could not create unique index"):
                cursor.execute("CREATE UNIQUE INDEX CONCURRENTLY half_built_x ON half_built (x)")
            cursor.execute(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = 'half_built_x'::regclass"
            )
            assert cursor.fetchone() == (False,)

            with connection.schema_editor(atomic=False) as editor:
                drop_invalid(editor, "half_built_x")

            cursor.execute("SELECT to_regclass('half_built_x')")
            assert cursor.fetchone() == (None,)
        finally:
            cursor.execute("DROP TABLE half_built")


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_an_index_a_killed_migration_built_is_kept_when_it_runs_again():
    """A migration killed between two concurrent builds is run again from its first: the index
    it had built already is kept, not built again (which PostgreSQL would refuse)."""
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(connection)
    key = ("crm", "0009_contact_team_backfill")
    before, after = loader.project_state(("crm", "0008_contact_team")), loader.project_state(key)
    operation = loader.get_migration(*key).operations[2]  # contact_team_status_name
    assert isinstance(operation, AddIndexWithoutLocking)
    with connection.schema_editor(atomic=False) as editor:
        operation.database_forwards("crm", editor, before, after)  # it is there: nothing to do
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass",
            [operation.index.name],
        )
        assert cursor.fetchone() == (True,)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_start_indexes_go_back_to_the_prefix_ones_and_come_again():
    """crm 0022 backwards builds crm 0010's prefix indexes again and drops its own; forwards
    the other way round, each holding its column, the team, the name and the key."""
    start = importlib.import_module("crm.migrations.0022_start_indexes")

    def definitions() -> dict[str, str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname, pg_get_indexdef(indexrelid) FROM pg_index"
                " JOIN pg_class ON pg_class.oid = indexrelid WHERE indisvalid"
                " AND relname ~ '^crm_(account|contact)_(name|email)_(prefix|start)$'"
            )
            return dict(cursor.fetchall())

    try:
        with connection.schema_editor(atomic=False) as editor:
            start.drop_start(None, editor)
            start.add_prefix(None, editor)
        assert set(definitions()) == {
            "crm_account_name_prefix",
            "crm_contact_name_prefix",
            "crm_contact_email_prefix",
        }
    finally:
        with connection.schema_editor(atomic=False) as editor:
            start.add_start(None, editor)
            start.drop_prefix(None, editor)
    built = definitions()
    assert set(built) == {
        "crm_account_name_start",
        "crm_contact_name_start",
        "crm_contact_email_start",
    }
    assert built["crm_contact_email_start"].endswith(
        "(upper((email)::text) text_pattern_ops) INCLUDE (email, team_id, name, id)"
    )
    assert built["crm_contact_name_start"].endswith(
        "(upper((name)::text) text_pattern_ops) INCLUDE (name, team_id, id)"
    )


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_contact_search_indexes_go_and_come_again():
    """crm 0025 backwards drops the team's and the tails' search indexes; forwards builds them
    again: the team first, then the name's and the email's trigrams; the name's and the
    email's trigrams but their first character."""
    team_search = importlib.import_module("crm.migrations.0025_contact_team_search")

    def definitions() -> dict[str, str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname, pg_get_indexdef(indexrelid) FROM pg_index JOIN pg_class"
                " ON pg_class.oid = indexrelid WHERE indisvalid AND relname IN (%s, %s)",
                [team_search.NAME, team_search.TAILS],
            )
            return dict(cursor.fetchall())

    try:
        with connection.schema_editor(atomic=False) as editor:
            team_search.drop(None, editor)
        assert definitions() == {}
    finally:
        with connection.schema_editor(atomic=False) as editor:
            team_search.add(None, editor)
    built = definitions()
    assert built[team_search.NAME].endswith(
        "USING gin (team_id, upper((name)::text) gin_trgm_ops, upper((email)::text) gin_trgm_ops)"
    )
    assert built[team_search.TAILS].endswith(
        "USING gin (substr(upper((name)::text), 2) gin_trgm_ops,"
        " substr(upper((email)::text), 2) gin_trgm_ops)"
    )


def _longest_email(rng: random.Random) -> str:
    """An email of the most characters the form takes (254) that do not compress: ASCII
    before the @ (the validator's rule), three-byte CJK labels of 63 after it."""
    labels, room = [], 254 - len("a@") - len(".com")
    while room > 0:  # each label, and the dot after it but the last
        length = min(63, room)
        labels.append("".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(length)))
        room -= length + 1
    email = "a@" + ".".join(labels) + ".com"
    validate_email(email)
    return email


@postgresql_only
@pytest.mark.django_db
def test_the_longest_contact_the_form_takes_fits_the_start_indexes(rita):
    """crm_contact_email_start holds the email twice and the name: at the longest a form
    takes, of four-byte characters where they are allowed, a row still fits (PostgreSQL
    refuses an index row over 2,704 bytes, and with it the contact)."""
    from crm.contacts import ContactForm

    rng = random.Random(22)
    email = _longest_email(rng)
    name = "".join(chr(rng.randint(0x20000, 0x2A6DF)) for _ in range(200))  # 4 bytes each
    account = AccountFactory(team=rita.team)
    form = ContactForm({"name": name, "email": email, "account": account.pk}, user=rita)
    assert form.is_valid(), form.errors
    form.save()

    assert len(email) == 254 and len(email.encode()) > 700
    assert Contact.objects.filter(email=email, name=name).count() == 1
