"""The database triggers that keep an invoice's team (its account's) and finance_agingday, the
invoice list's aging rollup.

An invoice carries its account's team, as a contact does (crm/triggers.py): a team's invoice
list reads finance_invoice alone. A row of finance_agingday sums the invoices still owed (a
debt above zero) that fall due on one day, per team, currency, sign of the penalty and whether
the penalty run failed on them: how many, their debt, their penalty. The aging table adds up a
few thousand rows instead of every past-due invoice (half a million at a million invoices).

Invoices change in many ways (payments, the admin, the penalty job's set-based updates,
imports, raw SQL) and only the database sees them all, so the database keeps both:

- an invoice inserted, or updated with a new account (or a team written by hand), takes its
  account's team; an account whose team changes passes it to its invoices, first waiting for
  every transaction writing invoices to end and holding new ones until it commits (LOCK TABLE
  … SHARE): an invoice written meanwhile read the old team, and is caught here or reads the new
  one. Teams change seldom; invoices are written all day.
- PostgreSQL: one trigger per statement on finance_invoice (insert, update, delete) reads the
  statement's old and new rows (transition tables), subtracts the old, adds the new, groups them
  and applies the net change in key order (two writers lock rollup rows in the same order and
  cannot deadlock), skipping keys whose change nets to nothing. An invoice moved to another
  team is one such update.
- SQLite (demo and test data, one writer) does the same row by row.

SQLite drops a table's triggers when a migration rebuilds the table, so they are installed
again after every `migrate` (see apps.py)."""

# ruff: noqa: S608 - SQL is built here from this module's constants only, never from input

from django.db import transaction

from crm.triggers import execute

KEY = "team_key, currency, due_date, penalty_sign, failed"
COLUMNS = f"{KEY}, invoices, debt, penalty"
ADD = (
    "invoices = finance_agingday.invoices + EXCLUDED.invoices,"
    " debt = finance_agingday.debt + EXCLUDED.debt,"
    " penalty = finance_agingday.penalty + EXCLUDED.penalty"
)


def _terms(rows: str, sign: str) -> str:
    """The rollup terms of the owed invoices in `rows`, counted with `sign`."""
    return (
        "SELECT coalesce(r.team_id, 0) AS team_key, r.currency, r.due_date,"
        " sign(r.penalty)::int AS penalty_sign, r.penalty_error <> '' AS failed,"
        f" {sign}1 AS invoices, {sign}r.debt AS debt, {sign}r.penalty AS penalty"
        f" FROM {rows} r WHERE r.debt > 0"
    )


def _apply(terms: str) -> str:
    return (
        f"INSERT INTO finance_agingday ({COLUMNS})"
        f" SELECT {KEY}, sum(invoices), sum(debt), sum(penalty) FROM ({terms}) t"
        f" GROUP BY {KEY}"
        " HAVING sum(invoices) <> 0 OR sum(debt) <> 0 OR sum(penalty) <> 0"
        f" ORDER BY {KEY}"
        f" ON CONFLICT ({KEY}) DO UPDATE SET {ADD}"
    )


def _function(name: str, body: str, returns: str = "NULL") -> str:
    return f"""
    CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      {body};
      RETURN {returns};
    END
    $$
    """


TEAM_TRIGGERS = {
    "finance_invoice_team": "finance_invoice",
    "finance_account_team": "crm_account",
    "finance_account_inserted": "crm_account",
}
AGING_TRIGGERS = {
    "finance_aging_inserted": "finance_invoice",
    "finance_aging_deleted": "finance_invoice",
    "finance_aging_updated": "finance_invoice",
    "finance_aging_truncated": "finance_invoice",
}

# An invoice's trigger reads its account FOR SHARE, and a team change holds the account row:
# an invoice written while its account changes team waits for that change, or the change
# waits for the invoice, so it never keeps the old team. Only writers of that account wait.
POSTGRESQL_TEAM = [
    _function(
        "finance_invoice_team",
        "NEW.team_id := (SELECT team_id FROM crm_account WHERE id = NEW.account_id FOR SHARE)",
        returns="NEW",
    ),
    _function(
        "finance_account_team",
        "UPDATE finance_invoice SET team_id = NEW.team_id"
        " WHERE account_id = NEW.id AND team_id IS DISTINCT FROM NEW.team_id",
    ),
    """
    CREATE TRIGGER finance_invoice_team BEFORE INSERT OR UPDATE OF account_id, team_id
    ON finance_invoice FOR EACH ROW EXECUTE FUNCTION finance_invoice_team()
    """,
    """
    CREATE TRIGGER finance_account_team AFTER UPDATE OF team_id ON crm_account
    FOR EACH ROW WHEN (OLD.team_id IS DISTINCT FROM NEW.team_id)
    EXECUTE FUNCTION finance_account_team()
    """,
    # Foreign keys are checked at commit: an invoice may be written before its account, in the
    # same transaction (loaddata, an import). The account, once there, gives it its team.
    """
    CREATE TRIGGER finance_account_inserted AFTER INSERT ON crm_account
    FOR EACH ROW EXECUTE FUNCTION finance_account_team()
    """,
]
POSTGRESQL_AGING = [
    _function("finance_aging_inserted", _apply(_terms("new_rows", ""))),
    _function("finance_aging_deleted", _apply(_terms("old_rows", "-"))),
    _function(
        "finance_aging_updated",
        _apply(f"{_terms('old_rows', '-')} UNION ALL {_terms('new_rows', '')}"),
    ),
    _function("finance_aging_truncated", "DELETE FROM finance_agingday"),
    """
    CREATE TRIGGER finance_aging_inserted AFTER INSERT ON finance_invoice
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION finance_aging_inserted()
    """,
    """
    CREATE TRIGGER finance_aging_deleted AFTER DELETE ON finance_invoice
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION finance_aging_deleted()
    """,
    """
    CREATE TRIGGER finance_aging_updated AFTER UPDATE ON finance_invoice
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION finance_aging_updated()
    """,
    """
    CREATE TRIGGER finance_aging_truncated AFTER TRUNCATE ON finance_invoice
    FOR EACH STATEMENT EXECUTE FUNCTION finance_aging_truncated()
    """,
]


def _sqlite_add(row: str, sign: str) -> str:
    # SQLite's upsert after INSERT … SELECT needs a WHERE to parse.
    return (
        f"INSERT INTO finance_agingday ({COLUMNS})"
        f" SELECT coalesce({row}.team_id, 0), {row}.currency, {row}.due_date,"
        f" CASE WHEN {row}.penalty > 0 THEN 1 WHEN {row}.penalty < 0 THEN -1 ELSE 0 END,"
        f" {row}.penalty_error <> '', {sign}1, {sign}{row}.debt, {sign}{row}.penalty"
        f" WHERE {row}.debt > 0"
        f" ON CONFLICT ({KEY}) DO UPDATE SET {ADD};"
    )


# SQLite cannot change NEW in a BEFORE trigger: the row is corrected just after it is written
# (an update the aging trigger counts like any other). A trigger never fires itself again.
_SQLITE_COPY = """
    UPDATE finance_invoice
       SET team_id = (SELECT team_id FROM crm_account WHERE id = NEW.account_id)
     WHERE id = NEW.id;
"""
_SQLITE_HAND_DOWN = "UPDATE finance_invoice SET team_id = NEW.team_id WHERE account_id = NEW.id;"
SQLITE_TEAM_DROP = [
    "DROP TRIGGER IF EXISTS finance_invoice_team_inserted",
    "DROP TRIGGER IF EXISTS finance_invoice_team_updated",
    "DROP TRIGGER IF EXISTS finance_account_team",
    "DROP TRIGGER IF EXISTS finance_account_inserted",
]
SQLITE_TEAM = [
    *SQLITE_TEAM_DROP,
    f"""
    CREATE TRIGGER finance_invoice_team_inserted AFTER INSERT ON finance_invoice
    BEGIN {_SQLITE_COPY} END
    """,
    f"""
    CREATE TRIGGER finance_invoice_team_updated AFTER UPDATE OF account_id, team_id
    ON finance_invoice BEGIN {_SQLITE_COPY} END
    """,
    f"""
    CREATE TRIGGER finance_account_team AFTER UPDATE OF team_id ON crm_account
    WHEN OLD.team_id IS NOT NEW.team_id
    BEGIN {_SQLITE_HAND_DOWN} END
    """,
    f"""
    CREATE TRIGGER finance_account_inserted AFTER INSERT ON crm_account
    BEGIN {_SQLITE_HAND_DOWN} END
    """,
]
SQLITE_AGING_DROP = [f"DROP TRIGGER IF EXISTS {name}" for name in AGING_TRIGGERS]
SQLITE_AGING = [
    *SQLITE_AGING_DROP,
    f"""
    CREATE TRIGGER finance_aging_inserted AFTER INSERT ON finance_invoice
    BEGIN {_sqlite_add("NEW", "")} END
    """,
    f"""
    CREATE TRIGGER finance_aging_deleted AFTER DELETE ON finance_invoice
    BEGIN {_sqlite_add("OLD", "-")} END
    """,
    f"""
    CREATE TRIGGER finance_aging_updated AFTER UPDATE ON finance_invoice
    BEGIN {_sqlite_add("OLD", "-")} {_sqlite_add("NEW", "")} END
    """,
]

TEAM = {"postgresql": POSTGRESQL_TEAM, "sqlite": SQLITE_TEAM}
AGING = {"postgresql": POSTGRESQL_AGING, "sqlite": SQLITE_AGING}
_ALL = {**TEAM_TRIGGERS, **AGING_TRIGGERS}
DROP = {
    "postgresql": [
        *(f"DROP TRIGGER IF EXISTS {name} ON {table}" for name, table in _ALL.items()),
        *(f"DROP FUNCTION IF EXISTS {name}()" for name in _ALL),
    ],
    "sqlite": SQLITE_AGING_DROP + SQLITE_TEAM_DROP,
}
# Invoices written before the team triggers: those with ids in [lo, hi] take their account's.
BACKFILL = {
    "postgresql": "UPDATE finance_invoice i SET team_id = a.team_id FROM crm_account a"
    " WHERE a.id = i.account_id AND i.id BETWEEN %(lo)s AND %(hi)s"
    " AND i.team_id IS DISTINCT FROM a.team_id",
    "sqlite": "UPDATE finance_invoice SET team_id ="
    " (SELECT team_id FROM crm_account WHERE id = finance_invoice.account_id)"
    " WHERE id BETWEEN %(lo)s AND %(hi)s",
}

# The sums of the invoices there are, from scratch: the migration's first fill, and what the
# tests compare the kept sums with.
FRESH = f"""
    SELECT coalesce(team_id, 0) AS team_key, currency, due_date,
           CASE WHEN penalty > 0 THEN 1 WHEN penalty < 0 THEN -1 ELSE 0 END AS penalty_sign,
           penalty_error <> '' AS failed, count(*) AS invoices, sum(debt) AS debt,
           sum(penalty) AS penalty
      FROM finance_invoice
     WHERE debt > 0
     GROUP BY {KEY}
"""


def install(connection) -> None:
    """(Re)create every trigger on this database."""
    execute(connection, TEAM)
    execute(connection, AGING)


def uninstall(connection) -> None:
    execute(connection, DROP)


def rebuild(connection) -> None:
    """Sum every owed invoice again, from scratch. Inside the caller's transaction, which on
    PostgreSQL holds off invoice writers meanwhile (they wait, then their triggers apply)."""
    lock = ["LOCK TABLE finance_invoice IN SHARE MODE"]
    fill = ["DELETE FROM finance_agingday", f"INSERT INTO finance_agingday ({COLUMNS}) {FRESH}"]
    execute(connection, {"postgresql": lock + fill, "sqlite": fill})


def reinstall(connection) -> None:
    """After a migrate on SQLite (demo and test data only): the triggers again, every
    invoice's team and the sums again, as they may have changed while the triggers were away
    (crm.triggers.around_migrate)."""
    with transaction.atomic(using=connection.alias):
        install(connection)
        with connection.cursor() as cursor:
            cursor.execute(BACKFILL["sqlite"], {"lo": 0, "hi": 2**62})
        rebuild(connection)
