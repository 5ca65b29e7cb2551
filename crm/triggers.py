"""The database triggers that keep a record's team equal to the team of the record it hangs
from: a contact's its account's, a lead's its owner's (an invoice's its account's: finance/
triggers.py).

A rep or manager sees the contacts of their team's accounts and a manager the leads of their
team's people. Read through the account (the owner), the list of one team out of a million
rows walks the whole list order checking each row's parent; with the team on the row, the
list reads one index. These rows and their parents change in many ways (forms, the admin,
QuerySet.update, imports, raw SQL), and only the database sees them all, so the database
keeps the copy:

- a row inserted, or updated with a new parent (or a team written by hand), takes its
  parent's team;
- a parent whose team changes passes the new team to its rows.

`install` creates or replaces the contacts' triggers, `install_leads` the leads' (crm 0015),
`install_owned` the tasks', events' and dispatches' (crm 0020). On SQLite they are dropped
before every `migrate` and installed again after it (around_migrate).

Holding the parent FOR SHARE has a price: a job that writes rows for many people in one
transaction (parc_generate: a batch's tasks) while someone moves two of those people to other
teams in another can deadlock: PostgreSQL then aborts one of the two transactions, whole."""

# ruff: noqa: S608 - SQL is built here from constants and our own names, never from input

from django.db import connections, transaction


def team_copy(
    table: str,
    row: str,
    account: str,
    parent: str = "crm_account",
    key: str = "account_id",
    column: str = "team_id",
) -> dict[str, dict]:
    """The statements that keep `table`'s `column` (team_id) equal to the team_id of the
    `parent` row its `key` names (by default its account), by vendor: "install" and "drop";
    and "backfill", which gives the rows written before the triggers (ids in [lo, hi]) theirs.
    Trigger and function names start with `row` (on the table) and `account` (on the parent).
    Our own names only, never input.

    On PostgreSQL a row inserted, or moved to another parent, reads its parent FOR SHARE,
    and a team change holds the parent row: a row written while its parent changes team
    waits for that change, or the change waits for the row, so it never keeps the old team.
    Only writers of that one parent wait, and a whole save() of a row that stays with its
    parent (an edit, a payment) takes nothing. SQLite (one writer) cannot change NEW in a
    BEFORE trigger: the row is corrected just after it is written (a trigger does not fire
    itself again: recursive_triggers is off)."""
    copy = f"(SELECT team_id FROM {parent} WHERE id = NEW.{key}"
    hand_down = f"UPDATE {table} SET {column} = NEW.team_id WHERE {key} = NEW.id"
    postgresql = [
        f"""
        CREATE OR REPLACE FUNCTION {row}_team() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          NEW.{column} := {copy} FOR SHARE);
          RETURN NEW;
        END
        $$
        """,
        f"""
        CREATE OR REPLACE FUNCTION {account}_team() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          {hand_down} AND {column} IS DISTINCT FROM NEW.team_id;
          RETURN NULL;
        END
        $$
        """,
        f"""
        CREATE OR REPLACE TRIGGER {row}_team BEFORE INSERT ON {table}
        FOR EACH ROW EXECUTE FUNCTION {row}_team()
        """,
        f"""
        CREATE OR REPLACE TRIGGER {row}_moved BEFORE UPDATE OF {key}, {column} ON {table}
        FOR EACH ROW WHEN (OLD.{key} IS DISTINCT FROM NEW.{key}
                           OR OLD.{column} IS DISTINCT FROM NEW.{column})
        EXECUTE FUNCTION {row}_team()
        """,
        f"""
        CREATE OR REPLACE TRIGGER {account}_team AFTER UPDATE OF team_id ON {parent}
        FOR EACH ROW WHEN (OLD.team_id IS DISTINCT FROM NEW.team_id)
        EXECUTE FUNCTION {account}_team()
        """,
        # Foreign keys are checked at commit: a row may be written before its parent, in the
        # same transaction (loaddata, an import). The parent, once there, gives it its team.
        f"""
        CREATE OR REPLACE TRIGGER {account}_inserted AFTER INSERT ON {parent}
        FOR EACH ROW EXECUTE FUNCTION {account}_team()
        """,
    ]
    corrected = f"UPDATE {table} SET {column} = {copy}) WHERE id = NEW.id;"
    sqlite_drop = [
        f"DROP TRIGGER IF EXISTS {name}"
        for name in (f"{row}_team_inserted", f"{row}_team_updated", f"{account}_team")
    ] + [f"DROP TRIGGER IF EXISTS {account}_inserted"]
    sqlite = [
        *sqlite_drop,
        f"CREATE TRIGGER {row}_team_inserted AFTER INSERT ON {table} BEGIN {corrected} END",
        f"""
        CREATE TRIGGER {row}_team_updated AFTER UPDATE OF {key}, {column} ON {table}
        BEGIN {corrected} END
        """,
        f"""
        CREATE TRIGGER {account}_team AFTER UPDATE OF team_id ON {parent}
        WHEN OLD.team_id IS NOT NEW.team_id BEGIN {hand_down}; END
        """,
        f"CREATE TRIGGER {account}_inserted AFTER INSERT ON {parent} BEGIN {hand_down}; END",
    ]
    on = {f"{row}_team": table, f"{row}_moved": table}
    on |= {f"{account}_team": parent, f"{account}_inserted": parent}
    postgresql_drop = [f"DROP TRIGGER IF EXISTS {name} ON {t}" for name, t in on.items()]
    postgresql_drop += [f"DROP FUNCTION IF EXISTS {row}_team()"]
    postgresql_drop += [f"DROP FUNCTION IF EXISTS {account}_team()"]
    backfill = {
        "postgresql": f"UPDATE {table} r SET {column} = p.team_id FROM {parent} p"
        f" WHERE p.id = r.{key} AND r.id BETWEEN %(lo)s AND %(hi)s"
        f" AND r.{column} IS DISTINCT FROM p.team_id",
        "sqlite": f"UPDATE {table} SET {column} ="
        f" (SELECT team_id FROM {parent} WHERE id = {table}.{key})"
        " WHERE id BETWEEN %(lo)s AND %(hi)s",
    }
    return {
        "install": {"postgresql": postgresql, "sqlite": sqlite},
        "drop": {"postgresql": postgresql_drop, "sqlite": sqlite_drop},
        "backfill": backfill,
    }


_CONTACTS = team_copy("crm_contact", "crm_contact", "crm_account")
STATEMENTS = _CONTACTS["install"]
DROP = _CONTACTS["drop"]
BACKFILL = _CONTACTS["backfill"]
# A lead's team is its owner's (crm 0015): a manager's lead list and its search read crm_rph
# alone. A lead with no owner, or an owner with no team, has none, and no manager sees it.
# A lead written or given to someone holds that person's row FOR SHARE until it commits: an
# update of the person (a login's last_login) waits those few milliseconds, and the morning
# digest, which skips locked people, takes them at its next run. The other way round, a lead
# written for someone whose digest is being sent waits for that batch (100 people) to commit.
_LEADS = team_copy("crm_rph", "crm_rph", "crm_rph_owner", parent="crm_user", key="owner_id")
LEAD_BACKFILL = _LEADS["backfill"]
BATCH = 50_000
LEAD_BATCH = 5_000


# A task's and an event's team is their owner's, a dispatch's account team its account's (its
# own team is the visiting team it is sent to) (crm 0020): a manager's dashboard reads the
# team's tasks, events and dispatches from an index each, not through every owner or account.
# Like a lead's, each row written holds its owner's (account's) row FOR SHARE until it commits.
OWNED = {
    "crm_task": team_copy("crm_task", "crm_task", "crm_task_user", "crm_user", "owner_id"),
    "crm_event": team_copy("crm_event", "crm_event", "crm_event_user", "crm_user", "owner_id"),
    "crm_dispatch": team_copy(
        "crm_dispatch", "crm_dispatch", "crm_dispatch_account", column="account_team_id"
    ),
}


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


def backfill_in_batches(
    connection, table: str, statements: dict[str, str], batch: int = BATCH
) -> None:
    """Run this database's statement for each range of BATCH ids of `table`, each in its own
    transaction: a migration does not hold a million rows locked at once. Call it once the
    triggers are in place, so that rows written meanwhile are right already."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(id), max(id) FROM {table}")
        lo, hi = cursor.fetchone()
    if lo is None:
        return
    for start in range(lo, hi + 1, batch):
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(statements[connection.vendor], {"lo": start, "hi": start + batch - 1})


def reinstall(connection) -> None:
    """After a migrate on SQLite (demo and test data only): the triggers again, and the team of
    any contact written while they were away."""
    install(connection)
    backfill(connection)


def install_leads(connection) -> None:
    execute(connection, _LEADS["install"])


def uninstall_leads(connection) -> None:
    execute(connection, _LEADS["drop"])


def backfill_leads(connection) -> None:
    """Give every lead its owner's team, 5,000 at a time: each lead written reads its owner
    FOR SHARE (the trigger), which holds that person's row (a login, a digest) until the
    batch commits, about half a second."""
    backfill_in_batches(connection, "crm_rph", LEAD_BACKFILL, batch=LEAD_BATCH)


def reinstall_leads(connection) -> None:
    """reinstall, for the leads' triggers."""
    install_leads(connection)
    backfill_leads(connection)


def install_owned(connection) -> None:
    for copy in OWNED.values():
        execute(connection, copy["install"])


def uninstall_owned(connection) -> None:
    for copy in OWNED.values():
        execute(connection, copy["drop"])


def backfill_owned(connection) -> None:
    """Give every task and event its owner's team and every dispatch its account's, 5,000
    at a time (as leads: each row written reads its owner FOR SHARE)."""
    for table, copy in OWNED.items():
        backfill_in_batches(connection, table, copy["backfill"], batch=LEAD_BATCH)


def reinstall_owned(connection) -> None:
    """reinstall, for the tasks', events' and dispatches' triggers."""
    install_owned(connection)
    backfill_owned(connection)
