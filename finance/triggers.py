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

from crm import rollups
from crm.triggers import execute, team_copy

AGING_ROLLUP = rollups.Rollup(
    "finance_agingday",
    "finance_invoice",
    keys={
        "team_key": ("coalesce({r}.team_id, 0)", "coalesce({r}.team_id, 0)"),
        "currency": ("{r}.currency", "{r}.currency"),
        "due_date": ("{r}.due_date", "{r}.due_date"),
        "penalty_sign": (
            "sign({r}.penalty)::int",
            "CASE WHEN {r}.penalty > 0 THEN 1 WHEN {r}.penalty < 0 THEN -1 ELSE 0 END",
        ),
        "failed": ("{r}.penalty_error <> ''", "{r}.penalty_error <> ''"),
    },
    sums={"invoices": "1", "debt": "{r}.debt", "penalty": "{r}.penalty"},
    reads=("team_id", "currency", "due_date", "penalty", "penalty_error", "debt"),
    where="{r}.debt > 0",
    prefix="finance_aging",
)
AGING_TRIGGERS = dict.fromkeys(AGING_ROLLUP.triggers, "finance_invoice")
_INVOICES = team_copy("finance_invoice", "finance_invoice", "finance_account")
TEAM = _INVOICES["install"]
POSTGRESQL_AGING = AGING_ROLLUP.postgresql()
SQLITE_AGING_DROP = AGING_ROLLUP.sqlite_drop()
AGING = {"postgresql": POSTGRESQL_AGING, "sqlite": AGING_ROLLUP.sqlite()}
DROP = {
    "postgresql": AGING_ROLLUP.postgresql_drop() + _INVOICES["drop"]["postgresql"],
    "sqlite": SQLITE_AGING_DROP + _INVOICES["drop"]["sqlite"],
}
# Invoices written before the team triggers: those with ids in [lo, hi] take their account's.
BACKFILL = _INVOICES["backfill"]


def install(connection) -> None:
    """(Re)create every trigger on this database."""
    execute(connection, TEAM)
    execute(connection, AGING)


def uninstall(connection) -> None:
    execute(connection, DROP)


def rebuild(connection) -> None:
    """Sum every owed invoice again, from scratch (crm.rollups.rebuild)."""
    rollups.rebuild(connection, [AGING_ROLLUP])


def compact(connection) -> None:
    """Fold the rollup's rows: each statement that changed owed invoices added a few since the
    last time (the penalty job calls this after its nightly run)."""
    rollups.compact(connection, [AGING_ROLLUP])


def reinstall(connection) -> None:
    """After a migrate on SQLite (demo and test data only): the triggers again, every
    invoice's team and the sums again, as they may have changed while the triggers were away
    (crm.triggers.around_migrate)."""
    with transaction.atomic(using=connection.alias):
        install(connection)
        with connection.cursor() as cursor:
            cursor.execute(BACKFILL["sqlite"], {"lo": 0, "hi": 2**62})
        rebuild(connection)
