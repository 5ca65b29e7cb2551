"""What changed since the last notifications_daily run, so that a re-run of the same day reads
only that (#21 §4: a same-day re-run at 10,000,000 rows read every matching object and every
open notification, 52 to 90 s).

The daily run's result depends on the objects (their dates, states, owners and accounts),
their owners' managers and accounts' managers, the notifications already there, the rules and
the moment. Objects and notifications change in many ways (pages, the admin, jobs' set-based
writes, raw SQL) and only the database sees them all, so on PostgreSQL triggers mark each
change as a block of BLOCK ids of one kind (notifications_objectchange):

- a task, opportunity, event, invoice or dispatch inserted, updated or deleted: its block;
- a notification inserted open, deleted, opened again or given another key (not by the run
  itself: it sets `vigil.notifications_sweep` for its own writes): its object's block;
- a user's manager or an account's account manager changed, or any of these tables
  truncated: everything ("*", -1).

A run for the same moment, the same rules and the same time zone as the last complete one
(DailySweep) reads the marked blocks only; any other run reads every block. Each mark carries
the transaction that wrote it. The run takes a snapshot before it reads the marks, and deletes
at its end only the marks of transactions that snapshot already saw committed: every statement
of the run saw their changes. A transaction still running then keeps its marks for the next
run.

A run that reads everything first deletes the record of the last complete run: its own
writes are not marked, so until it completes (killed half-way, say), no run may trust the
marks alone. Writes the triggers do not see are not marked either: with a trigger disabled
and enabled again, or with `session_replication_role = replica` (logical replication,
`pg_restore --disable-triggers`). After such writes, empty the record (`DELETE FROM
notifications_dailysweep`) and the next run reads everything. A run that lost the job's lock
stops at its next query (crm.runner); a statement it still had running writes unmarked.

SQLite (demo and test data) has no marks: every run reads everything."""

# ruff: noqa: S608 - SQL is built here from this module's constants only, never from input

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from django.db import connection, transaction
from django.db.models import Max, Min, Model
from django.utils import timezone

from crm.triggers import execute
from notifications.models import DailySweep, Notification, ObjectChange, ReminderRule
from notifications.objects import TYPES

BLOCK = 100  # ids a mark stands for
CHUNK = 100_000  # ids a run reads in one transaction
# Marked ranges this close are read as one: reading the ids between costs less than the
# statements of another range (about 2 ms, the reading of some 2,000 objects).
GAP = 1_000
EVERYTHING = "*"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SWEEP_SETTING = "vigil.notifications_sweep"

_XID = "pg_current_xact_id()::text::bigint"
_MARKS = "notifications_objectchange"


def _model(kind: str) -> type[Model]:
    return TYPES[kind].open(EPOCH).model  # any moment: only the model is wanted


def _object_tables() -> dict[str, str]:
    return {kind: _model(kind)._meta.db_table for kind in TYPES}


def _block(id_sql: str) -> str:
    """The first and last id of the block of `id_sql`: a mark says both, so that its reader
    never depends on the size the triggers were installed with."""
    first = f"{id_sql} - {id_sql} % {BLOCK}"
    return f"{first}, {first} + {BLOCK - 1}"


def _mark(kind: str, rows: str) -> str:
    """The statement that marks the blocks of the ids of `rows` (a transition table)."""
    return (
        f"INSERT INTO {_MARKS} (kind, first_id, last_id, xid) SELECT DISTINCT '{kind}',"
        f" {_block('r.id')}, {_XID} FROM {rows} r"
    )


_EVERYTHING = (
    f"INSERT INTO {_MARKS} (kind, first_id, last_id, xid) VALUES ('{EVERYTHING}', -1, -1, {_XID})"
)
_NOT_THE_SWEEP = f"current_setting('{SWEEP_SETTING}', true) IS DISTINCT FROM 'on'"
_KEY = ("object_kind", "object_id", "source", "user_id", "expires_at")


def _function(name: str, body: str) -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN {body}; RETURN NULL; END $$"
    )


def _on_statement(name: str, event: str, table: str, body: str, referencing: str = ""):
    """(name, table, statements) of a trigger run once per statement, and its function."""
    return (
        name,
        table,
        [
            _function(name, body),
            f"CREATE OR REPLACE TRIGGER {name} AFTER {event} ON {table} {referencing}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
        ],
    )


def _on_row(name: str, event: str, table: str, body: str, when: str):
    """(name, table, statements) of a trigger run for each row that meets `when` (checked by
    the database without calling the function), and its function."""
    return (
        name,
        table,
        [
            _function(name, body),
            f"CREATE OR REPLACE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW"
            f" WHEN ({when}) EXECUTE FUNCTION {name}()",
        ],
    )


_NEW_ROWS = "REFERENCING NEW TABLE AS new_rows"
_OLD_ROWS = "REFERENCING OLD TABLE AS old_rows"


def _triggers() -> list[tuple[str, str, list[str]]]:
    """(trigger name, its table, the statements that create it and its function)."""
    made = []
    for kind, table in _object_tables().items():
        both = "(SELECT id FROM old_rows UNION ALL SELECT id FROM new_rows)"
        made += [
            _on_statement(
                f"{table}_marks_insert", "INSERT", table, _mark(kind, "new_rows"), _NEW_ROWS
            ),
            _on_statement(
                f"{table}_marks_delete", "DELETE", table, _mark(kind, "old_rows"), _OLD_ROWS
            ),
            _on_statement(
                f"{table}_marks_update",
                "UPDATE",
                table,
                _mark(kind, both),
                f"{_OLD_ROWS} NEW TABLE AS new_rows",
            ),
        ]
    table = Notification._meta.db_table

    def marks(*rows: str) -> str:
        values = ", ".join(
            f"({row}.object_kind, {_block(f'{row}.object_id')}, {_XID})" for row in rows
        )
        return f"INSERT INTO {_MARKS} (kind, first_id, last_id, xid) VALUES {values}"

    # Row triggers whose condition the database checks without calling them, so that the
    # run's own writes (it sets SWEEP_SETTING for them: quiet()) and the many updates that
    # change nothing that counts here (deadlines, escalations, reminders sent) cost next to
    # nothing. An update counts when a notification opens again, or when its key changes
    # whatever its status (a closed one's key, too, keeps its episode from being notified
    # again): then both keys' blocks.
    key_changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in _KEY)
    made += [
        _on_row(
            f"{table}_marks_insert",
            "INSERT",
            table,
            marks("NEW"),
            f"NEW.status = 'open' AND {_NOT_THE_SWEEP}",
        ),
        _on_row(f"{table}_marks_delete", "DELETE", table, marks("OLD"), _NOT_THE_SWEEP),
        _on_row(
            f"{table}_marks_update",
            "UPDATE",
            table,
            marks("NEW", "OLD"),
            f"((NEW.status = 'open' AND OLD.status <> 'open') OR {key_changed})"
            f" AND {_NOT_THE_SWEEP}",
        ),
    ]
    # Whose notifications they are, through a manager or an account manager: everything.
    for parent, column in (("crm_user", "manager_id"), ("crm_account", "account_manager_id")):
        made.append(
            _on_row(
                f"{parent}_marks_{column}",
                f"UPDATE OF {column}",
                parent,
                _EVERYTHING,
                f"OLD.{column} IS DISTINCT FROM NEW.{column}",
            )
        )
    for truncated in [*_object_tables().values(), table]:
        made.append(
            _on_statement(f"{truncated}_marks_truncate", "TRUNCATE", truncated, _EVERYTHING)
        )
    return made


def install(connection) -> None:
    """(Re)create the triggers (PostgreSQL; SQLite has none)."""
    execute(connection, {"postgresql": [s for _, _, made in _triggers() for s in made]})


def uninstall(connection) -> None:
    drops = [
        drop
        for name, table, _ in _triggers()
        for drop in (
            f"DROP TRIGGER IF EXISTS {name} ON {table}",
            f"DROP FUNCTION IF EXISTS {name}()",
        )
    ]
    execute(connection, {"postgresql": drops})


def _installed() -> bool:
    names = [name for name, _, _ in _triggers()]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname = ANY(%s) AND tgenabled <> 'D'", [names]
        )
        return cursor.fetchone()[0] == len(names)


def rules_digest(rules: list[ReminderRule]) -> str:
    """What the run's result depends on besides the data and the moment."""
    described = [
        {f.attname: getattr(rule, f.attname) for f in ReminderRule._meta.concrete_fields}
        for rule in rules
    ]
    zone = timezone.get_current_timezone_name()  # what a calendar date is compared in
    text = json.dumps([zone, described], default=str, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class Sweep:
    """One run's reading of what to do: every block, or the blocks marked since the last
    complete run at the same moment with the same rules. Begin it before anything else."""

    def __init__(self, as_of: datetime, rules: list[ReminderRule]) -> None:
        self.as_of, self.digest = as_of, rules_digest(rules)
        self.snapshot: str | None = None
        self.marked: dict[str, set[tuple[int, int]]] | None = None  # None: every block
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_snapshot()::text")
            self.snapshot = cursor.fetchone()[0]
        last = DailySweep.objects.filter(pk=1).first()
        if last is None or last.as_of != as_of or last.rules != self.digest or not _installed():
            # Read everything (a restored database without its triggers too). The run's own
            # writes are not marked: until it completes, no run may read only the marks.
            DailySweep.objects.filter(pk=1).delete()
            return
        marked: dict[str, set[tuple[int, int]]] = {}
        blocks = ObjectChange.objects.values_list("kind", "first_id", "last_id").distinct()
        for kind, first_id, last_id in blocks:
            marked.setdefault(kind, set()).add((first_id, last_id))
        self.marked = marked

    @property
    def everything(self) -> bool:
        return self.marked is None or EVERYTHING in self.marked

    def ranges(self, kind: str) -> Iterator[list[tuple[int, int]]]:
        """`kind`'s ids to read, a transaction's worth at a time: the id ranges (lo, hi) of
        one window of CHUNK ids: all of it, or its marked blocks (those GAP apart or closer
        as one range)."""
        blocks = set() if self.marked is None else self.marked.get(kind, set())
        if self.everything or (-1, -1) in blocks:
            span = _span(kind)
            if span is not None:
                lo, hi = span
                for start in range(lo, hi + 1, CHUNK):
                    yield [(start, min(start + CHUNK - 1, hi))]
            return
        windows: dict[int, list[tuple[int, int]]] = {}
        for first, last in sorted(blocks):
            spans = windows.setdefault(first // CHUNK, [])
            if spans and first - spans[-1][1] <= GAP:
                spans[-1] = (spans[-1][0], max(spans[-1][1], last))
            else:
                spans.append((first, last))
        yield from windows.values()

    def finish(self) -> None:
        """The run is complete: say so, and forget the marks it has seen to."""
        if self.snapshot is None:  # SQLite: no marks, and every run reads everything
            return
        done = {"as_of": self.as_of, "rules": self.digest}
        with transaction.atomic():
            if not DailySweep.objects.filter(pk=1).update(**done):
                DailySweep.objects.create(pk=1, **done)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {_MARKS} WHERE pg_visible_in_snapshot(xid::text::xid8,"
                    " %s::pg_snapshot) OR xid = pg_current_xact_id_if_assigned()::text::bigint",
                    [self.snapshot],
                )


@contextmanager
def quiet() -> Iterator[None]:
    """Inside a transaction of the run: its own writes to notifications mark nothing. Set
    back when they are done, in case that transaction goes on (a test's, a dry run's)."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, 'on', true)", [SWEEP_SETTING])
    yield
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, 'off', true)", [SWEEP_SETTING])


def _span(kind: str) -> tuple[int, int] | None:
    """The lowest and highest id of `kind`'s objects and of open notifications about one."""
    objects = _model(kind)._default_manager.aggregate(lo=Min("pk"), hi=Max("pk"))
    about = Notification.objects.filter(
        status=Notification.Status.OPEN, object_kind=kind
    ).aggregate(lo=Min("object_id"), hi=Max("object_id"))
    los = [v for v in (objects["lo"], about["lo"]) if v is not None]
    his = [v for v in (objects["hi"], about["hi"]) if v is not None]
    return (min(los), max(his)) if los else None
