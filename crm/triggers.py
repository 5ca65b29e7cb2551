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

from collections.abc import Callable

POSTGRESQL = [
    """
    CREATE OR REPLACE FUNCTION crm_contact_team() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      NEW.team_id := (SELECT team_id FROM crm_account WHERE id = NEW.account_id);
      RETURN NEW;
    END
    $$
    """,
    """
    CREATE OR REPLACE FUNCTION crm_account_team() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      -- Wait for every transaction writing contacts to end, and hold new ones until this one
      -- does: a contact written meanwhile read the account's old team, and is caught here or
      -- reads the new one. Teams change seldom; contacts are written all day.
      LOCK TABLE crm_contact IN SHARE MODE;
      UPDATE crm_contact SET team_id = NEW.team_id
       WHERE account_id = NEW.id AND team_id IS DISTINCT FROM NEW.team_id;
      RETURN NULL;
    END
    $$
    """,
    "DROP TRIGGER IF EXISTS crm_contact_team ON crm_contact",
    """
    CREATE TRIGGER crm_contact_team BEFORE INSERT OR UPDATE OF account_id, team_id
    ON crm_contact FOR EACH ROW EXECUTE FUNCTION crm_contact_team()
    """,
    "DROP TRIGGER IF EXISTS crm_account_team ON crm_account",
    """
    CREATE TRIGGER crm_account_team AFTER UPDATE OF team_id ON crm_account
    FOR EACH ROW WHEN (OLD.team_id IS DISTINCT FROM NEW.team_id)
    EXECUTE FUNCTION crm_account_team()
    """,
]

# SQLite cannot change NEW in a BEFORE trigger: the row is corrected just after it is written.
# A trigger does not fire itself again (recursive_triggers is off).
_SQLITE_COPY = """
    UPDATE crm_contact SET team_id = (SELECT team_id FROM crm_account WHERE id = NEW.account_id)
     WHERE id = NEW.id;
"""
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS crm_contact_team_inserted",
    "DROP TRIGGER IF EXISTS crm_contact_team_updated",
    "DROP TRIGGER IF EXISTS crm_account_team",
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
    """
    CREATE TRIGGER crm_account_team AFTER UPDATE OF team_id ON crm_account
    WHEN OLD.team_id IS NOT NEW.team_id
    BEGIN
      UPDATE crm_contact SET team_id = NEW.team_id WHERE account_id = NEW.id;
    END
    """,
]

STATEMENTS = {"postgresql": POSTGRESQL, "sqlite": SQLITE}
DROP = {
    "postgresql": [
        "DROP TRIGGER IF EXISTS crm_contact_team ON crm_contact",
        "DROP TRIGGER IF EXISTS crm_account_team ON crm_account",
        "DROP FUNCTION IF EXISTS crm_contact_team()",
        "DROP FUNCTION IF EXISTS crm_account_team()",
    ],
    "sqlite": SQLITE_DROP,
}
# Contacts written before the triggers: every one takes its account's team.
BACKFILL = {
    "postgresql": "UPDATE crm_contact c SET team_id = a.team_id FROM crm_account a"
    " WHERE a.id = c.account_id AND c.team_id IS DISTINCT FROM a.team_id",
    "sqlite": "UPDATE crm_contact SET team_id ="
    " (SELECT team_id FROM crm_account WHERE id = crm_contact.account_id)",
}


def execute(connection, statements: dict[str, list[str]]) -> None:
    """Run the statements written for this database (by vendor: "postgresql", "sqlite")."""
    with connection.cursor() as cursor:
        for statement in statements.get(connection.vendor, []):
            cursor.execute(statement)


def reinstall_after_migrate(app: str, migration: str, reinstall) -> Callable[..., None]:
    """A post_migrate receiver that calls `reinstall(connection)` once `app`'s `migration`
    (the one that installs its triggers) is applied: SQLite drops a table's triggers when a
    later migration rebuilds the table."""

    def receiver(sender, using, **kwargs) -> None:
        from django.db import connections
        from django.db.migrations.recorder import MigrationRecorder

        connection = connections[using]
        recorded = MigrationRecorder(connection).migration_qs
        if recorded.filter(app=app, name=migration).exists():
            reinstall(connection)

    return receiver


def install(connection) -> None:
    """(Re)create the triggers on this database."""
    execute(connection, STATEMENTS)


def uninstall(connection) -> None:
    execute(connection, DROP)


def backfill(connection) -> None:
    """Give every contact its account's team."""
    execute(connection, {vendor: [sql] for vendor, sql in BACKFILL.items()})


def reinstall(connection) -> None:
    """After a migrate: the triggers again, and on SQLite (demo and test data only) the team of
    any contact written while a rebuilt table had none."""
    install(connection)
    if connection.vendor == "sqlite":
        backfill(connection)
