"""The database triggers that keep a contact's team equal to its account's team.

A rep or manager sees the contacts of their team's accounts. Read through the account, the
contact list of one team out of a million contacts walks the whole list order checking each
row's account; with the team on the contact row, the list reads one index. Contacts and
accounts change in many ways (forms, the admin, QuerySet.update, imports, raw SQL), and only
the database sees them all, so the database keeps the copy:

- a contact inserted, or updated with a new account (or a team written by hand), takes its
  account's team;
- an account whose team changes passes the new team to its contacts.

SQLite drops a table's triggers when a migration rebuilds the table, so `install` runs after
every `migrate` too (see apps.py); it replaces whatever is there."""

from django.db import connections, transaction

# On PostgreSQL a contact's trigger reads its account FOR SHARE, and a team change holds the
# account row: a contact written while its account changes team waits for that change, or the
# change waits for the contact, so it never keeps the old team. Only writers of that one
# account wait.
POSTGRESQL = [
    """
    CREATE OR REPLACE FUNCTION crm_contact_team() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      NEW.team_id := (SELECT team_id FROM crm_account WHERE id = NEW.account_id FOR SHARE);
      RETURN NEW;
    END
    $$
    """,
    """
    CREATE OR REPLACE FUNCTION crm_account_team() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE crm_contact SET team_id = NEW.team_id
       WHERE account_id = NEW.id AND team_id IS DISTINCT FROM NEW.team_id;
      RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER crm_contact_team BEFORE INSERT OR UPDATE OF account_id, team_id
    ON crm_contact FOR EACH ROW EXECUTE FUNCTION crm_contact_team()
    """,
    """
    CREATE TRIGGER crm_account_team AFTER UPDATE OF team_id ON crm_account
    FOR EACH ROW WHEN (OLD.team_id IS DISTINCT FROM NEW.team_id)
    EXECUTE FUNCTION crm_account_team()
    """,
    # Foreign keys are checked at commit: a contact may be written before its account, in the
    # same transaction (loaddata, an import). The account, once there, gives it its team.
    """
    CREATE TRIGGER crm_account_inserted AFTER INSERT ON crm_account
    FOR EACH ROW EXECUTE FUNCTION crm_account_team()
    """,
]

# SQLite (one writer) cannot change NEW in a BEFORE trigger: the row is corrected just after it
# is written. A trigger does not fire itself again (recursive_triggers is off).
_SQLITE_COPY = """
    UPDATE crm_contact SET team_id = (SELECT team_id FROM crm_account WHERE id = NEW.account_id)
     WHERE id = NEW.id;
"""
_SQLITE_HAND_DOWN = "UPDATE crm_contact SET team_id = NEW.team_id WHERE account_id = NEW.id;"
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS crm_contact_team_inserted",
    "DROP TRIGGER IF EXISTS crm_contact_team_updated",
    "DROP TRIGGER IF EXISTS crm_account_team",
    "DROP TRIGGER IF EXISTS crm_account_inserted",
]
SQLITE = [
    *SQLITE_DROP,
    f"""
    CREATE TRIGGER crm_contact_team_inserted AFTER INSERT ON crm_contact
    BEGIN {_SQLITE_COPY} END
    """,
    f"""
    CREATE TRIGGER crm_contact_team_updated AFTER UPDATE OF account_id, team_id ON crm_contact
    BEGIN {_SQLITE_COPY} END
    """,
    f"""
    CREATE TRIGGER crm_account_team AFTER UPDATE OF team_id ON crm_account
    WHEN OLD.team_id IS NOT NEW.team_id
    BEGIN {_SQLITE_HAND_DOWN} END
    """,
    f"""
    CREATE TRIGGER crm_account_inserted AFTER INSERT ON crm_account
    BEGIN {_SQLITE_HAND_DOWN} END
    """,
]

STATEMENTS = {"postgresql": POSTGRESQL, "sqlite": SQLITE}
DROP = {
    "postgresql": [
        "DROP TRIGGER IF EXISTS crm_contact_team ON crm_contact",
        "DROP TRIGGER IF EXISTS crm_account_team ON crm_account",
        "DROP TRIGGER IF EXISTS crm_account_inserted ON crm_account",
        "DROP FUNCTION IF EXISTS crm_contact_team()",
        "DROP FUNCTION IF EXISTS crm_account_team()",
    ],
    "sqlite": SQLITE_DROP,
}
# Contacts written before the triggers: those with ids in [lo, hi] take their account's team.
BACKFILL = {
    "postgresql": "UPDATE crm_contact c SET team_id = a.team_id FROM crm_account a"
    " WHERE a.id = c.account_id AND c.id BETWEEN %(lo)s AND %(hi)s"
    " AND c.team_id IS DISTINCT FROM a.team_id",
    "sqlite": "UPDATE crm_contact SET team_id ="
    " (SELECT team_id FROM crm_account WHERE id = crm_contact.account_id)"
    " WHERE id BETWEEN %(lo)s AND %(hi)s",
}
BATCH = 50_000


def execute(connection, statements: dict[str, list[str]]) -> None:
    """Run the statements written for this database (by vendor: "postgresql", "sqlite")."""
    with connection.cursor() as cursor:
        for statement in statements.get(connection.vendor, []):
            cursor.execute(statement)


def around_migrate(app: str, migration: str, uninstall, reinstall):
    """pre_migrate and post_migrate receivers for SQLite, which checks every trigger when a
    migration rebuilds a table (copy, drop, rename) and fails on one that reads another table
    (and drops a rebuilt table's own): the triggers go before a migrate and come back after
    it, once `app`'s `migration` (the one that installs them) is applied. PostgreSQL keeps
    triggers through ALTER TABLE, and dropping one would lock its table: nothing is done there."""

    def before(sender, using, **kwargs) -> None:
        connection = connections[using]
        if connection.vendor == "sqlite":
            uninstall(connection)

    def after(sender, using, **kwargs) -> None:
        from django.db.migrations.recorder import MigrationRecorder

        connection = connections[using]
        if connection.vendor != "sqlite":
            return
        recorded = MigrationRecorder(connection).migration_qs
        if recorded.filter(app=app, name=migration).exists():
            reinstall(connection)

    return before, after


def install(connection) -> None:
    """(Re)create the triggers on this database."""
    execute(connection, STATEMENTS)


def uninstall(connection) -> None:
    execute(connection, DROP)


def backfill(connection) -> None:
    """Give every contact its account's team."""
    backfill_in_batches(connection, "crm_contact", BACKFILL)


def backfill_in_batches(connection, table: str, statements: dict[str, str]) -> None:
    """Run this database's statement for each range of BATCH ids of `table`, each in its own
    transaction: a migration does not hold a million rows locked at once. Call it once the
    triggers are in place, so that rows written meanwhile are right already."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(id), max(id) FROM {table}")  # noqa: S608 - a table name of ours
        lo, hi = cursor.fetchone()
    if lo is None:
        return
    for start in range(lo, hi + 1, BATCH):
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(statements[connection.vendor], {"lo": start, "hi": start + BATCH - 1})


def reinstall(connection) -> None:
    """After a migrate on SQLite (demo and test data only): the triggers again, and the team of
    any contact written while they were away."""
    install(connection)
    backfill(connection)
