"""Set-based writes the ORM does not spell: INSERT … SELECT … ON CONFLICT DO NOTHING, and a
lean multi-row INSERT … VALUES … ON CONFLICT for rows built in Python."""

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    BinaryField,
    DateField,
    DateTimeField,
    F,
    Func,
    IntegerField,
    JSONField,
    Model,
    QuerySet,
)
from django.db.models.expressions import Combinable


def insert_from_select(
    model: type[Model], columns: Mapping[str, Combinable | str], source: QuerySet
) -> int:
    """Insert one row into `model` per row of `source`, filling each named field from its
    expression (a string names a field of `source`), and skip rows that would break a unique
    constraint. Returns rows inserted. Works on PostgreSQL and SQLite (3.24+). A NULL needs a
    type: Cast(Value(None), SomeField())."""
    expressions = {f"v_{n}": F(e) if isinstance(e, str) else e for n, e in columns.items()}
    select = source.order_by().values(**expressions)
    try:
        sql, params = select.query.sql_with_params()
    except EmptyResultSet:  # e.g. pk__in=[]: nothing to insert
        return 0
    quote = connection.ops.quote_name
    column_of = {f.name: str(f.column) for f in model._meta.concrete_fields}
    targets = ", ".join(quote(column_of[name]) for name in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            # "WHERE true": SQLite would read a bare ON after the SELECT as a join condition.
            f"INSERT INTO {quote(model._meta.db_table)} ({targets}) "  # noqa: S608 - quoted names; values are parameters
            f"SELECT * FROM ({sql}) AS source WHERE true ON CONFLICT DO NOTHING",
            params,
        )
        return max(cursor.rowcount, 0)


def insert_rows(
    model: type[Model],
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict: Sequence[str],
    update: Sequence[str] = (),
) -> None:
    """Insert rows (field name → value; every row the same fields) with one statement per
    page: rows that conflict on the `conflict` fields are skipped, or have their `update`
    fields overwritten. For hot paths where bulk_create's per-value compiling costs more than
    the database: values are adapted only for the field types that need it (JSON, date-times,
    bytes). Runs through Django's cursor, so query guards and counts see it."""
    if not rows:
        return
    names = list(rows[0])
    fields = [model._meta.get_field(name) for name in names]
    adapt = [
        (n, _adapter(field))
        for n, field in enumerate(fields)
        if isinstance(field, JSONField | DateTimeField | BinaryField)
    ]
    quote = connection.ops.quote_name
    column_of = {f.name: str(f.column) for f in model._meta.concrete_fields}
    column_of |= {f.attname: str(f.column) for f in model._meta.concrete_fields}
    columns = ", ".join(quote(column_of[name]) for name in names)
    target = ", ".join(quote(column_of[name]) for name in conflict)
    if update:
        action = "UPDATE SET " + ", ".join(
            f"{quote(column_of[n])} = excluded.{quote(column_of[n])}" for n in update
        )
    else:
        action = "NOTHING"
    placeholder = "(" + ", ".join(["%s"] * len(names)) + ")"
    page = max(1, (connection.features.max_query_params or 65535) // len(names))
    with connection.cursor() as cursor:
        for start in range(0, len(rows), page):
            chunk = rows[start : start + page]
            params: list[Any] = []
            for row in chunk:
                values = [row[name] for name in names]
                for n, prepare in adapt:
                    values[n] = prepare(values[n])
                params += values
            cursor.execute(
                f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "  # noqa: S608 - quoted names; values are parameters
                f"VALUES {', '.join([placeholder] * len(chunk))} "
                f"ON CONFLICT ({target}) DO {action}",
                params,
            )


def _adapter(field) -> Callable[[Any], Any]:
    """How one value of `field` goes to the database. JSON is sent as its text, which both
    databases read into the column's type; everything else as Django would."""
    if isinstance(field, JSONField):
        encoder = field.encoder
        return lambda value: None if value is None else json.dumps(value, cls=encoder)
    return functools.partial(field.get_db_prep_save, connection=connection)


class AddDays(Func):
    """date + a whole number of days, as a date, on PostgreSQL and SQLite. Immutable, so it
    can back a GeneratedField and an index."""

    output_field = DateField()
    arity = 2

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="(%(expressions)s)", arg_joiner=" + ")

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="date(%(expressions)s || ' days')",
            arg_joiner=", '+' || ",
        )


class DayNumber(Func):
    """A date as a whole number of days since 1970-01-01, on PostgreSQL and SQLite. Day
    arithmetic on integers is exact, fast and the same in both databases."""

    output_field = IntegerField()
    arity = 1

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="(%(expressions)s - DATE '1970-01-01')")

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="CAST(julianday(%(expressions)s) - 2440587.5 AS INTEGER)",
        )


def update_rows(model: type[Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """Set `fields` of each row whose primary key is the first value of a row of `rows` (then
    one value per field), with one UPDATE … FROM a VALUES list per page: what bulk_update
    does, without a CASE branch per row to build. PostgreSQL and SQLite (3.33+)."""
    if not rows:
        return 0
    quote = connection.ops.quote_name
    meta = model._meta
    by_name = {field.name: field for field in meta.concrete_fields}
    targets = [by_name[name] for name in fields]
    # A VALUES list's columns are column1, column2… on both databases. (A WITH naming them
    # would do, but SQLite's driver reports no row count for a statement starting WITH.)
    names = [f"column{i + 1}" for i in range(len(targets) + 1)]
    # A VALUES list types its columns from the first row: name the type where it is set.
    typed = connection.vendor == "postgresql"
    assignments = ", ".join(
        f"{quote(str(field.column))} = v.{name}"
        + (f"::{field.db_type(connection)}" if typed else "")
        for field, name in zip(targets, names[1:], strict=True)
    )
    changed = 0
    page = max(1, 900 // (len(targets) + 1))  # SQLite's bound parameters, with room to spare
    with connection.cursor() as cursor:
        for start in range(0, len(rows), page):
            chunk = rows[start : start + page]
            placeholders = ", ".join(f"({', '.join(['%s'] * len(names))})" for _ in chunk)
            params = [
                value
                for row in chunk
                for value in (
                    row[0],
                    *(
                        field.get_db_prep_value(value, connection)
                        for field, value in zip(targets, row[1:], strict=True)
                    ),
                )
            ]
            cursor.execute(
                f"UPDATE {quote(meta.db_table)} SET {assignments} "  # noqa: S608 - quoted names; values are parameters
                f"FROM (VALUES {placeholders}) AS v "
                f"WHERE {quote(meta.db_table)}.{quote(str(meta.pk.column))} = v.column1",
                params,
            )
            changed += max(cursor.rowcount, 0)
    return changed
