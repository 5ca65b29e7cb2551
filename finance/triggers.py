"""The database triggers that keep an invoice's team (its account's) and finance_agingday, the
invoice list's aging rollup.

An invoice carries its account's team, as a contact does (crm/triggers.py): a team's invoice
list reads finance_invoice alone. The rows of finance_agingday, added up per key, give the
invoices still owed (a debt above zero) that fall due on one day, per team, currency, sign of
the penalty and whether the penalty run failed on them: how many, their debt, their penalty.
The aging table adds up a few thousand rows instead of every past-due invoice (half a million
at a million invoices).

Invoices change in many ways (payments, the admin, the penalty job's set-based updates,
imports, raw SQL) and only the database sees them all, so the database keeps both:

- an invoice inserted, or updated with a new account (or a team written by hand), takes its
  account's team, reading the account FOR SHARE: one written while its account changes team
  waits for that change. An account whose team changes passes it to its invoices; one inserted
  after its invoices, in the same transaction (foreign keys are checked at commit), too.
- PostgreSQL: one trigger per statement on finance_invoice (insert, update, delete) reads the
  statement's old and new rows (transition tables), subtracts the old, adds the new, and
  inserts the net change per key, skipping keys whose change nets to nothing. Rows are only
  ever added, so no writer waits for another on the rollup (a payment during the penalty run,
  an account changing team); the aging table sums them, and `compact` folds them after each
  night's penalty run. An invoice moved to another team is one such update.
- SQLite (demo and test data, one writer) does the same row by row.

On SQLite the triggers are dropped before every `migrate` and installed again after it
(crm.triggers.around_migrate)."""

# ruff: noqa: S608 - SQL is built here from this module's constants only, never from input

from django.db import transaction

from crm.triggers import execute, team_copy

KEY = "team_key, currency, due_date, penalty_sign, failed"
COLUMNS = f"{KEY}, invoices, debt, penalty"


def _terms(rows: str, sign: str) -> str:
    """The rollup terms of the owed invoices in `rows`, counted with `sign`."""
    return (
        "SELECT coalesce(r.team_id, 0) AS team_key, r.currency, r.due_date,"
        " sign(r.penalty)::int AS penalty_sign, r.penalty_error <> '' AS failed,"
        f" {sign}1 AS invoices, {sign}r.debt AS debt, {sign}r.penalty AS penalty"
        f" FROM {rows} r WHERE r.debt > 0"
    )


def _apply(terms: str) -> str:
    """Insert the net change of a statement, per key: rows are only ever added (no row of the
    rollup is locked, so writers never wait for each other there); `compact` folds them."""
    return (
        f"INSERT INTO finance_agingday ({COLUMNS})"
        f" SELECT {KEY}, sum(invoices), sum(debt), sum(penalty) FROM ({terms}) t"
        f" GROUP BY {KEY}"
        " HAVING sum(invoices) <> 0 OR sum(debt) <> 0 OR sum(penalty) <> 0"
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


AGING_TRIGGERS = {
    "finance_aging_inserted": "finance_invoice",
    "finance_aging_deleted": "finance_invoice",
    "finance_aging_updated": "finance_invoice",
    "finance_aging_truncated": "finance_invoice",
}
_INVOICES = team_copy("finance_invoice", "finance_invoice", "finance_account")
TEAM = _INVOICES["install"]
POSTGRESQL_AGING = [
    _function("finance_aging_inserted", _apply(_terms("new_rows", ""))),
    _function("finance_aging_deleted", _apply(_terms("old_rows", "-"))),
    _function(
        "finance_aging_updated",
        _apply(f"{_terms('old_rows', '-')} UNION ALL {_terms('new_rows', '')}"),
    ),
    # After a compaction that was running commits: see crm/rollups.py.
    _function(
        "finance_aging_truncated",
        "LOCK TABLE finance_agingday IN EXCLUSIVE MODE; DELETE FROM finance_agingday",
    ),
    """
    CREATE OR REPLACE TRIGGER finance_aging_inserted AFTER INSERT ON finance_invoice
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION finance_aging_inserted()
    """,
    """
    CREATE OR REPLACE TRIGGER finance_aging_deleted AFTER DELETE ON finance_invoice
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION finance_aging_deleted()
    """,
    """
    CREATE OR REPLACE TRIGGER finance_aging_updated AFTER UPDATE ON finance_invoice
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION finance_aging_updated()
    """,
    """
    CREATE OR REPLACE TRIGGER finance_aging_truncated AFTER TRUNCATE ON finance_invoice
    FOR EACH STATEMENT EXECUTE FUNCTION finance_aging_truncated()
    """,
]


def _sqlite_add(row: str, sign: str) -> str:
    return (
        f"INSERT INTO finance_agingday ({COLUMNS})"
        f" SELECT coalesce({row}.team_id, 0), {row}.currency, {row}.due_date,"
        f" CASE WHEN {row}.penalty > 0 THEN 1 WHEN {row}.penalty < 0 THEN -1 ELSE 0 END,"
        f" {row}.penalty_error <> '', {sign}1, {sign}{row}.debt, {sign}{row}.penalty"
        f" WHERE {row}.debt > 0;"
    )


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

AGING = {"postgresql": POSTGRESQL_AGING, "sqlite": SQLITE_AGING}
DROP = {
    "postgresql": [
        *(f"DROP TRIGGER IF EXISTS {name} ON {table}" for name, table in AGING_TRIGGERS.items()),
        *(f"DROP FUNCTION IF EXISTS {name}()" for name in AGING_TRIGGERS),
        *_INVOICES["drop"]["postgresql"],
    ],
    "sqlite": SQLITE_AGING_DROP + _INVOICES["drop"]["sqlite"],
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


# The rows of each key folded into one (none when they sum to nothing). On PostgreSQL one
# statement, whose DELETE takes exactly the rows it sums: a row another writer commits
# meanwhile stays, unsummed, for the next time. SQLite has one writer at a time.
_FOLD = f"SELECT {KEY}, sum(invoices), sum(debt), sum(penalty) FROM {{rows}} GROUP BY {KEY}" + (
    " HAVING sum(invoices) <> 0 OR sum(debt) <> 0 OR sum(penalty) <> 0"
)
COMPACT = {
    "postgresql": [
        "WITH gone AS (DELETE FROM finance_agingday RETURNING *)"
        f" INSERT INTO finance_agingday ({COLUMNS}) {_FOLD.format(rows='gone')}"
    ],
    "sqlite": [
        "CREATE TEMP TABLE aging_folded AS " + _FOLD.format(rows="finance_agingday"),
        "DELETE FROM finance_agingday",
        f"INSERT INTO finance_agingday ({COLUMNS}) SELECT * FROM aging_folded",
        "DROP TABLE aging_folded",
    ],
}


def compact(connection) -> None:
    """Fold the rollup's rows: each statement that changed owed invoices added a few since the
    last time (the penalty job calls this after its nightly run)."""
    if connection.vendor == "postgresql":
        execute(connection, COMPACT)  # one statement
    else:
        with transaction.atomic(using=connection.alias):
            execute(connection, COMPACT)


def reinstall(connection) -> None:
    """After a migrate on SQLite (demo and test data only): the triggers again, every
    invoice's team and the sums again, as they may have changed while the triggers were away
    (crm.triggers.around_migrate)."""
    with transaction.atomic(using=connection.alias):
        install(connection)
        with connection.cursor() as cursor:
            cursor.execute(BACKFILL["sqlite"], {"lo": 0, "hi": 2**62})
        rebuild(connection)
