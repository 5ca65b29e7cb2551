"""The rollups the database keeps for the dashboard: a team's pipeline and due tasks, added up
from a row or two per person instead of counted from every record on every page.

- crm_ownerpipeline: per owner and stage, how many opportunities and their amount.
- crm_ownertaskday: per owner and day (UTC) it falls due, how many open tasks.

A manager's dashboard summed about 67,000 open opportunities and counted 38,000 due tasks of
their team on every load (30 ms of SQL). Records change in many ways (pages, the admin, jobs'
set-based writes, raw SQL) and only the database sees them all, so it keeps the rollups, the
way finance/triggers.py keeps the invoice aging rollup (a `Rollup` of this module too):

- PostgreSQL: one trigger per statement on the source table (insert, update, delete) reads
  the statement's old and new rows (transition tables), subtracts the old, adds the new, and
  inserts the net change per key, skipping keys whose change nets to nothing (a task's title
  edited). Rows are only ever added, so no writer waits for another on a rollup; a reader
  sums them, and `compact` folds them after the night's notifications run. A truncate empties
  the rollup.
- SQLite (demo and test data, one writer) does the same row by row.

Who owns a row is read when the dashboard sums it (the owner's team, as visibility has it):
a person moving team takes their rows along, with nothing to rewrite. On SQLite the triggers
are dropped before every `migrate` and installed again after it (crm.triggers.around_migrate).
"""

# ruff: noqa: S608 - SQL is built here from this module's constants only, never from input

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction

from crm.triggers import execute


@dataclass(frozen=True)
class Rollup:
    """How `table` sums `source`: its key columns, each an expression of a source row `r`
    (PostgreSQL, SQLite), its summed columns (each an expression of `r`), of the rows that
    match `where`; `reads`, the source's columns those read. Its triggers and functions are
    named after `prefix` (by default the table)."""

    table: str
    source: str
    keys: dict[str, tuple[str, str]]
    sums: dict[str, str]
    reads: tuple[str, ...]
    where: str = "true"
    prefix: str = ""

    @property
    def key(self) -> str:
        return ", ".join(self.keys)

    @property
    def columns(self) -> str:
        return ", ".join([*self.keys, *self.sums])

    def _terms(self, rows: str, sign: str, vendor: int, row: str = "r") -> str:
        keys = [f"{exprs[vendor].format(r=row)} AS {key}" for key, exprs in self.keys.items()]
        sums = [f"{sign}{expr.format(r=row)} AS {name}" for name, expr in self.sums.items()]
        source = f" FROM {rows} {row}" if rows else ""
        selected = ", ".join([*keys, *sums])
        return f"SELECT {selected}{source} WHERE {self.where.format(r=row)}"

    def _fold(self, rows: str) -> str:
        """The rows of `rows` summed per key, but keys that sum to nothing."""
        summed = ", ".join(f"sum({name})" for name in self.sums)
        nothing = " OR ".join(f"sum({name}) <> 0" for name in self.sums)
        return f"SELECT {self.key}, {summed} FROM {rows} GROUP BY {self.key} HAVING {nothing}"

    def _apply(self, terms: str) -> str:
        return f"INSERT INTO {self.table} ({self.columns}) {self._fold(f'({terms}) t')}"

    @property
    def triggers(self) -> list[str]:
        events = ("inserted", "deleted", "updated", "truncated")
        return [f"{self.prefix or self.table}_{event}" for event in events]

    def postgresql(self) -> list[str]:
        inserted, deleted, updated, truncated = self.triggers
        functions = {
            inserted: self._apply(self._terms("new_rows", "", 0)),
            deleted: self._apply(self._terms("old_rows", "-", 0)),
            updated: self._apply(
                f"{self._terms('old_rows', '-', 0)} UNION ALL {self._terms('new_rows', '', 0)}"
            ),
            # After a fold that was running commits (its rows are locked until then): the
            # DELETE's own snapshot, taken once the lock is ours, sees the rows it made.
            truncated: f"LOCK TABLE {self.table} IN EXCLUSIVE MODE; DELETE FROM {self.table}",
        }
        events = {
            inserted: ("INSERT", "REFERENCING NEW TABLE AS new_rows"),
            deleted: ("DELETE", "REFERENCING OLD TABLE AS old_rows"),
            updated: ("UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            truncated: ("TRUNCATE", ""),
        }
        statements = []
        for name, body in functions.items():
            event, referencing = events[name]
            statements += [
                f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$"
                f" BEGIN {body}; RETURN NULL; END $$",
                f"CREATE OR REPLACE TRIGGER {name} AFTER {event} ON {self.source} {referencing}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
            ]
        return statements

    def _sqlite_add(self, row: str, sign: str) -> str:
        return f"INSERT INTO {self.table} ({self.columns}) {self._terms('', sign, 1, row)};"

    def sqlite(self) -> list[str]:
        inserted, deleted, updated, _ = self.triggers
        # A row whose summed columns stay as they were adds nothing (PostgreSQL nets it out).
        changed = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in self.reads)
        return [
            *self.sqlite_drop(),
            f"CREATE TRIGGER {inserted} AFTER INSERT ON {self.source}"
            f" BEGIN {self._sqlite_add('NEW', '')} END",
            f"CREATE TRIGGER {deleted} AFTER DELETE ON {self.source}"
            f" BEGIN {self._sqlite_add('OLD', '-')} END",
            f"CREATE TRIGGER {updated} AFTER UPDATE ON {self.source} WHEN {changed}"
            f" BEGIN {self._sqlite_add('OLD', '-')} {self._sqlite_add('NEW', '')} END",
        ]

    def sqlite_drop(self) -> list[str]:
        return [f"DROP TRIGGER IF EXISTS {name}" for name in self.triggers]

    def postgresql_drop(self) -> list[str]:
        return [
            *(f"DROP TRIGGER IF EXISTS {name} ON {self.source}" for name in self.triggers),
            *(f"DROP FUNCTION IF EXISTS {name}()" for name in self.triggers),
        ]

    def fresh(self, vendor: str) -> str:
        """The sums from scratch, per key: the first fill, and what tests compare with."""
        terms = self._terms(self.source, "", 0 if vendor == "postgresql" else 1)
        return self._fold(f"({terms}) t")

    def compact(self, vendor: str) -> list[str]:
        """The rows of each key folded into one (none when they sum to nothing). On PostgreSQL
        one statement, whose DELETE takes exactly the rows it sums: a row another writer
        commits meanwhile stays, unsummed, for the next time. SQLite has one writer."""
        if vendor == "postgresql":
            return [
                f"WITH gone AS (DELETE FROM {self.table} RETURNING *)"
                f" INSERT INTO {self.table} ({self.columns}) {self._fold('gone')}"
            ]
        return [
            f"CREATE TEMP TABLE folded AS {self._fold(self.table)}",
            f"DELETE FROM {self.table}",
            f"INSERT INTO {self.table} ({self.columns}) SELECT * FROM folded",
            "DROP TABLE folded",
        ]


PIPELINE = Rollup(
    "crm_ownerpipeline",
    "crm_opportunity",
    keys={"owner_id": ("{r}.owner_id", "{r}.owner_id"), "stage": ("{r}.stage", "{r}.stage")},
    sums={"opportunities": "1", "amount": "{r}.amount"},
    reads=("owner_id", "stage", "amount"),
)
TASK_DAYS = Rollup(
    "crm_ownertaskday",
    "crm_task",
    keys={
        "owner_id": ("{r}.owner_id", "{r}.owner_id"),
        # Django keeps SQLite's times in UTC, as text that date() reads.
        "due_day": ("({r}.due_at AT TIME ZONE 'UTC')::date", "date({r}.due_at)"),
    },
    sums={"tasks": "1"},
    reads=("owner_id", "due_at", "status"),
    where="{r}.status = 'open' AND {r}.due_at IS NOT NULL",
)
ROLLUPS = (PIPELINE, TASK_DAYS)


def install(connection, rollups: Sequence[Rollup] = ROLLUPS) -> None:
    """(Re)create every trigger of `rollups` on this database."""
    execute(
        connection,
        {
            "postgresql": [s for rollup in rollups for s in rollup.postgresql()],
            "sqlite": [s for rollup in rollups for s in rollup.sqlite()],
        },
    )


def uninstall(connection, rollups: Sequence[Rollup] = ROLLUPS) -> None:
    execute(
        connection,
        {
            "postgresql": [s for rollup in rollups for s in rollup.postgresql_drop()],
            "sqlite": [s for rollup in rollups for s in rollup.sqlite_drop()],
        },
    )


def rebuild(connection, rollups: Sequence[Rollup] = ROLLUPS) -> None:
    """Sum every source row again, from scratch. Inside the caller's transaction, which on
    PostgreSQL holds off the sources' writers meanwhile (they wait, then their triggers
    apply)."""
    vendor = connection.vendor
    statements = []
    for rollup in rollups:
        if vendor == "postgresql":
            statements.append(f"LOCK TABLE {rollup.source} IN SHARE MODE")
        statements += [
            f"DELETE FROM {rollup.table}",
            f"INSERT INTO {rollup.table} ({rollup.columns}) {rollup.fresh(vendor)}",
        ]
    execute(connection, {vendor: statements})


def compact(connection, rollups: Sequence[Rollup] = ROLLUPS) -> None:
    """Fold each rollup's rows: every statement that changed its source added a few since the
    last time (notifications_daily folds the dashboard's first thing, finance_penalties the
    aging rollup after its run). On PostgreSQL a statement a rollup, each whole by itself;
    SQLite's four, in a transaction."""
    vendor = connection.vendor
    statements = [s for rollup in rollups for s in rollup.compact(vendor)]
    if vendor == "postgresql":
        execute(connection, {vendor: statements})
        return
    with transaction.atomic(using=connection.alias):
        execute(connection, {vendor: statements})


def reinstall(connection) -> None:
    """After a migrate on SQLite (demo and test data only): the triggers again, and the sums
    again, as the sources may have changed while the triggers were away."""
    with transaction.atomic(using=connection.alias):
        install(connection)
        rebuild(connection)
