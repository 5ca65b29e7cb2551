"""The database triggers that keep finance_agingday, the invoice list's aging rollup.

Each row of finance_agingday sums the invoices still owed (a debt above zero) that fall due on
one day, per team of their account, currency, sign of the penalty and whether the penalty run
failed on them: how many, their debt, their penalty. The aging table then adds up a few
thousand rows instead of every past-due invoice (half a million at a million invoices).

Invoices change in many ways (payments, the admin, the penalty job's set-based updates, imports,
raw SQL) and only the database sees them all, so the database keeps the sums:

- PostgreSQL: one trigger per statement on finance_invoice (insert, update, delete) reads the
  statement's old and new rows (transition tables), subtracts the old, adds the new, groups them
  and applies the net change in key order (so two writers lock rollup rows in the same order and
  cannot deadlock), skipping keys whose change nets to nothing;
- an account whose team changes moves its invoices' sums to the new team. It first waits for
  every transaction writing invoices to end and holds new ones until it commits (LOCK TABLE …
  SHARE): an invoice written meanwhile read the old team and is moved here, or reads the new
  one. Teams change seldom; invoices are written all day.
- SQLite (demo and test data, one writer) does the same row by row.

SQLite drops a table's triggers when a migration rebuilds the table, so `install` runs after
every `migrate` too (see apps.py); it replaces whatever is there."""

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


def _terms(rows: str, sign: str, team: str | None = None) -> str:
    """The rollup terms of the owed invoices in `rows`, counted with `sign`: in the team of
    their account, or in `team`."""
    join = "" if team else " JOIN crm_account a ON a.id = r.account_id"
    return (
        f"SELECT {team or 'coalesce(a.team_id, 0)'} AS team_key, r.currency, r.due_date,"
        " sign(r.penalty)::int AS penalty_sign, r.penalty_error <> '' AS failed,"
        f" {sign}1 AS invoices, {sign}r.debt AS debt, {sign}r.penalty AS penalty"
        f" FROM {rows} r{join} WHERE r.debt > 0"
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


def _function(name: str, body: str) -> str:
    return f"""
    CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      {body};
      RETURN NULL;
    END
    $$
    """


_ACCOUNTS_INVOICES = "(SELECT * FROM finance_invoice WHERE account_id = NEW.id)"
_MOVED = _apply(
    _terms(_ACCOUNTS_INVOICES, "-", "coalesce(OLD.team_id, 0)")
    + " UNION ALL "
    + _terms(_ACCOUNTS_INVOICES, "", "coalesce(NEW.team_id, 0)")
)

POSTGRESQL = [
    _function("finance_aging_inserted", _apply(_terms("new_rows", ""))),
    _function("finance_aging_deleted", _apply(_terms("old_rows", "-"))),
    _function(
        "finance_aging_updated",
        _apply(f"{_terms('old_rows', '-')} UNION ALL {_terms('new_rows', '')}"),
    ),
    _function("finance_aging_account_team", f"LOCK TABLE finance_invoice IN SHARE MODE; {_MOVED}"),
    "DROP TRIGGER IF EXISTS finance_aging_inserted ON finance_invoice",
    "DROP TRIGGER IF EXISTS finance_aging_deleted ON finance_invoice",
    "DROP TRIGGER IF EXISTS finance_aging_updated ON finance_invoice",
    "DROP TRIGGER IF EXISTS finance_aging_account_team ON crm_account",
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
    CREATE TRIGGER finance_aging_account_team AFTER UPDATE OF team_id ON crm_account
    FOR EACH ROW WHEN (OLD.team_id IS DISTINCT FROM NEW.team_id)
    EXECUTE FUNCTION finance_aging_account_team()
    """,
]


def _sqlite_add(row: str, sign: str, team: str) -> str:
    # SQLite's upsert after INSERT … SELECT needs a WHERE to parse.
    return (
        f"INSERT INTO finance_agingday ({COLUMNS})"
        f" SELECT {team}, {row}.currency, {row}.due_date,"
        f" CASE WHEN {row}.penalty > 0 THEN 1 WHEN {row}.penalty < 0 THEN -1 ELSE 0 END,"
        f" {row}.penalty_error <> '', {sign}1, {sign}{row}.debt, {sign}{row}.penalty"
        f" WHERE {row}.debt > 0"
        f" ON CONFLICT ({KEY}) DO UPDATE SET {ADD};"
    )


def _sqlite_team(row: str) -> str:
    return f"coalesce((SELECT team_id FROM crm_account WHERE id = {row}.account_id), 0)"


SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS finance_aging_inserted",
    "DROP TRIGGER IF EXISTS finance_aging_deleted",
    "DROP TRIGGER IF EXISTS finance_aging_updated",
    "DROP TRIGGER IF EXISTS finance_aging_account_team",
]
SQLITE = [
    *SQLITE_DROP,
    f"""
    CREATE TRIGGER finance_aging_inserted AFTER INSERT ON finance_invoice
    BEGIN {_sqlite_add("NEW", "", _sqlite_team("NEW"))} END
    """,
    f"""
    CREATE TRIGGER finance_aging_deleted AFTER DELETE ON finance_invoice
    BEGIN {_sqlite_add("OLD", "-", _sqlite_team("OLD"))} END
    """,
    f"""
    CREATE TRIGGER finance_aging_updated AFTER UPDATE ON finance_invoice
    BEGIN
      {_sqlite_add("OLD", "-", _sqlite_team("OLD"))}
      {_sqlite_add("NEW", "", _sqlite_team("NEW"))}
    END
    """,
    f"""
    CREATE TRIGGER finance_aging_account_team AFTER UPDATE OF team_id ON crm_account
    WHEN OLD.team_id IS NOT NEW.team_id
    BEGIN
      INSERT INTO finance_agingday ({COLUMNS})
      SELECT team_key, currency, due_date, penalty_sign, failed, sum(invoices), sum(debt),
             sum(penalty)
        FROM (
          SELECT coalesce(NEW.team_id, 0) AS team_key, currency, due_date,
                 CASE WHEN penalty > 0 THEN 1 WHEN penalty < 0 THEN -1 ELSE 0 END AS penalty_sign,
                 penalty_error <> '' AS failed, 1 AS invoices, debt, penalty
            FROM finance_invoice WHERE account_id = NEW.id AND debt > 0
          UNION ALL
          SELECT coalesce(OLD.team_id, 0), currency, due_date,
                 CASE WHEN penalty > 0 THEN 1 WHEN penalty < 0 THEN -1 ELSE 0 END,
                 penalty_error <> '', -1, -debt, -penalty
            FROM finance_invoice WHERE account_id = NEW.id AND debt > 0
        ) GROUP BY {KEY}
      ON CONFLICT ({KEY}) DO UPDATE SET {ADD};
    END
    """,
]

STATEMENTS = {"postgresql": POSTGRESQL, "sqlite": SQLITE}
DROP = {
    "postgresql": [
        "DROP TRIGGER IF EXISTS finance_aging_inserted ON finance_invoice",
        "DROP TRIGGER IF EXISTS finance_aging_deleted ON finance_invoice",
        "DROP TRIGGER IF EXISTS finance_aging_updated ON finance_invoice",
        "DROP TRIGGER IF EXISTS finance_aging_account_team ON crm_account",
        "DROP FUNCTION IF EXISTS finance_aging_inserted()",
        "DROP FUNCTION IF EXISTS finance_aging_deleted()",
        "DROP FUNCTION IF EXISTS finance_aging_updated()",
        "DROP FUNCTION IF EXISTS finance_aging_account_team()",
    ],
    "sqlite": SQLITE_DROP,
}

# The sums of the invoices there are, from scratch: the migration's first fill, and what the
# tests compare the kept sums with.
FRESH = f"""
    SELECT coalesce(a.team_id, 0) AS team_key, i.currency, i.due_date,
           CASE WHEN i.penalty > 0 THEN 1 WHEN i.penalty < 0 THEN -1 ELSE 0 END AS penalty_sign,
           i.penalty_error <> '' AS failed, count(*) AS invoices, sum(i.debt) AS debt,
           sum(i.penalty) AS penalty
      FROM finance_invoice i JOIN crm_account a ON a.id = i.account_id
     WHERE i.debt > 0
     GROUP BY {KEY}
"""


def install(connection) -> None:
    """(Re)create the triggers on this database."""
    execute(connection, STATEMENTS)


def uninstall(connection) -> None:
    execute(connection, DROP)


def rebuild(connection) -> None:
    """Sum every owed invoice again, from scratch. Inside the caller's transaction, which on
    PostgreSQL holds off invoice writers meanwhile (they wait, then their triggers apply)."""
    lock = ["LOCK TABLE finance_invoice IN SHARE MODE"]
    fill = ["DELETE FROM finance_agingday", f"INSERT INTO finance_agingday ({COLUMNS}) {FRESH}"]
    execute(connection, {"postgresql": lock + fill, "sqlite": fill})


def reinstall(connection) -> None:
    """After a migrate: the triggers again, and on SQLite (demo and test data only) the sums
    again, in case a rebuilt table had none meanwhile."""
    with transaction.atomic(using=connection.alias):
        install(connection)
        if connection.vendor == "sqlite":
            rebuild(connection)
