"""Set-based writes the ORM does not spell: INSERT … SELECT … ON CONFLICT DO NOTHING."""

from collections.abc import Mapping

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import DateField, F, Func, IntegerField, Model, QuerySet
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
