"""Index builds that do not lock a big table: CREATE INDEX CONCURRENTLY on PostgreSQL, where a
plain CREATE INDEX would block every write to the table (leads, contacts, invoices: a million
rows each) for as long as the build takes. SQLite, which holds demo and test data only, builds
them plainly. A migration that uses them sets `atomic = False`: PostgreSQL builds concurrently
only outside a transaction."""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently

# The search indexes (crm 0005, 0007, 0010 and 0022, finance 0004), whose column is UPPER(…) of a
# searched column: PostgreSQL keeps statistics of the expression for them, and reads there how
# many rows a LIKE '%…%' matches.
SEARCH_INDEXES = (
    *(f"rph_{column}_trgm" for column in ("name", "company", "email")),
    *(f"crm_rph_{column}_prefix" for column in ("name", "company", "email")),
    *(
        f"crm_contact_{column}_{kind}"
        for column in ("name", "email")
        for kind in ("trgm", "prefix", "start")
    ),
    *(f"crm_account_name_{kind}" for kind in ("trgm", "prefix", "start")),
    *(f"crm_opportunity_name_{kind}" for kind in ("trgm", "prefix")),
    "finance_invoice_number_trgm",
)
# A sample of 300,000 rows and 1,000 histogram buckets instead of 100: a name in one row of
# 1,000 is told from one in 100 (at the default, a surname in 1 row of 60 was taken for 1 in
# 10,000, and an address in 1 of 2,400 for 1 in 100, which made PostgreSQL walk a million leads).
SEARCH_STATISTICS = 1000


class AddIndexWithoutLocking(AddIndexConcurrently):
    """AddIndex, concurrently on PostgreSQL; a plain AddIndex elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor == "postgresql":
            drop_invalid(schema_editor, self.index.name)
            if not _exists(schema_editor, self.index.name):  # built by an interrupted run
                super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            model = to_state.apps.get_model(app_label, self.model_name)
            if self.allow_migrate_model(
                schema_editor.connection.alias, model
            ) and not _exists_elsewhere(schema_editor, self.index.name):
                schema_editor.add_index(model, self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            model = from_state.apps.get_model(app_label, self.model_name)
            if self.allow_migrate_model(schema_editor.connection.alias, model):
                schema_editor.remove_index(model, self.index)


class RemoveIndexWithoutLocking(RemoveIndexConcurrently):
    """RemoveIndex, concurrently on PostgreSQL; a plain RemoveIndex elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            model = from_state.apps.get_model(app_label, self.model_name)
            if self.allow_migrate_model(schema_editor.connection.alias, model):
                index = from_state.models[app_label, self.model_name_lower].get_index_by_name(
                    self.name
                )
                schema_editor.remove_index(model, index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            model = to_state.apps.get_model(app_label, self.model_name)
            if self.allow_migrate_model(schema_editor.connection.alias, model):
                index = to_state.models[app_label, self.model_name_lower].get_index_by_name(
                    self.name
                )
                schema_editor.add_index(model, index)


def search_statistics(connection, statistics: int = SEARCH_STATISTICS) -> None:
    """Keep `statistics` histogram buckets for each search index there is (-1: the default);
    taken into account at the next ANALYZE of its table. PostgreSQL only."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'i' AND relname = ANY(%s)",
            [list(SEARCH_INDEXES)],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'ALTER INDEX "{name}" ALTER COLUMN 1 SET STATISTICS {int(statistics)}')


def _exists(schema_editor, name: str) -> bool:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_class WHERE relname = %s AND relkind = 'i'", [name])
        return cursor.fetchone() is not None


def _exists_elsewhere(schema_editor, name: str) -> bool:
    """On SQLite: built already (by an earlier version of the migration)."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = %s", [name])
        return cursor.fetchone() is not None


def drop_invalid(schema_editor, name: str) -> None:
    """A concurrent build that was interrupted (a deploy killed mid-migration) leaves an
    invalid index behind, which IF NOT EXISTS would take for done: drop it to build again."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = pg_index.indexrelid"
            " WHERE pg_class.relname = %s AND NOT pg_index.indisvalid",
            [name],
        )
        if cursor.fetchone() is not None:
            cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


def add_trigram_indexes(schema_editor, columns: dict[str, tuple[str, ...]]) -> None:
    """A trigram GIN index on UPPER(column) of each table's columns, `<table>_<column>_trgm`,
    built concurrently (icontains runs as UPPER(column) LIKE UPPER('%…%')). PostgreSQL only,
    and only where the pg_trgm extension is available."""
    if not _extensions(schema_editor, "pg_trgm"):
        return  # SQLite scans; it holds demo and test data only
    _add_upper_indexes(
        schema_editor, columns, "trgm", 'USING gin ((UPPER("{}"::text)) gin_trgm_ops)'
    )


def drop_trigram_indexes(schema_editor, columns: dict[str, tuple[str, ...]]) -> None:
    _drop_upper_indexes(schema_editor, columns, "trgm")


def add_team_trigram_index(schema_editor, table: str, columns: tuple[str, ...], name: str):
    """One trigram GIN index of UPPER(column) for each of `columns` whose first column is the
    table's team (a B-tree key in a GIN index, from the btree_gin extension), built
    concurrently: a team's matches are read from it alone, with no bitmap of the team's
    100,000 rows to AND with. PostgreSQL only, and only where both extensions are available.
    A query's team must be a bigint, the column's type (crm.visibility.visible_to): the
    extension's operators take no other on PostgreSQL 15."""
    if not _extensions(schema_editor, "pg_trgm", "btree_gin"):
        return
    searched = ", ".join(f'(UPPER("{column}"::text)) gin_trgm_ops' for column in columns)
    drop_invalid(schema_editor, name)
    schema_editor.execute(
        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{table}"'
        f" USING gin (team_id, {searched})"
    )


def add_tail_trigram_index(schema_editor, table: str, columns: tuple[str, ...], name: str):
    """One trigram GIN index of each of `columns` upper-cased but for its first character,
    built concurrently: the words found further in than a column's start (its start index,
    add_start_indexes, holds those at the start). crm.matching reads them as
    substr(UPPER(column::text), 2). PostgreSQL only, and only where pg_trgm is available."""
    if not _extensions(schema_editor, "pg_trgm"):
        return
    tails = ", ".join(f'(substr(UPPER("{column}"::text), 2)) gin_trgm_ops' for column in columns)
    drop_invalid(schema_editor, name)
    schema_editor.execute(
        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{table}" USING gin ({tails})'
    )


def drop_index(schema_editor, name: str) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


def _extensions(schema_editor, *names: str) -> bool:
    """On PostgreSQL, where every one of these extensions is available, each created (if it
    was not): True. Elsewhere, or where one is missing: False, and nothing is created."""
    if schema_editor.connection.vendor != "postgresql":
        return False
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_available_extensions WHERE name = ANY(%s)", [list(names)]
        )
        if cursor.fetchone()[0] != len(names):
            return False
        for name in names:
            cursor.execute(f'CREATE EXTENSION IF NOT EXISTS "{name}"')
    return True


def add_prefix_indexes(schema_editor, columns: dict[str, tuple[str, ...]]) -> None:
    """A B-tree index on UPPER(column) with text_pattern_ops for each table's columns,
    `<table>_<column>_prefix`, built concurrently: istartswith (UPPER(column) LIKE 'AB%') reads
    a range of it. A trigram index knows no more of one or two letters than the words that
    start with them anywhere in the text, each row of which is then read and mostly dropped.
    PostgreSQL only."""
    if schema_editor.connection.vendor == "postgresql":
        _add_upper_indexes(
            schema_editor, columns, "prefix", '((UPPER("{}"::text)) text_pattern_ops)'
        )


def drop_prefix_indexes(schema_editor, columns: dict[str, tuple[str, ...]]) -> None:
    _drop_upper_indexes(schema_editor, columns, "prefix")


def add_start_indexes(
    schema_editor, columns: dict[str, tuple[str, ...]], held: tuple[str, ...]
) -> None:
    """A prefix index (add_prefix_indexes) that also holds the column itself and the `held`
    columns, `<table>_<column>_start`, built concurrently: what starts with one or two letters
    (25,000 of a million contacts start with "no") is read from it alone, without the table
    (an index-only scan). PostgreSQL only."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, names in columns.items():
        for column in names:
            included = ", ".join(f'"{name}"' for name in dict.fromkeys((column, *held)))
            _add_upper_indexes(
                schema_editor,
                {table: (column,)},
                "start",
                '((UPPER("{}"::text)) text_pattern_ops) INCLUDE (' + included + ")",
            )


def drop_start_indexes(schema_editor, columns: dict[str, tuple[str, ...]]) -> None:
    _drop_upper_indexes(schema_editor, columns, "start")


def _add_upper_indexes(schema_editor, columns, suffix: str, definition: str) -> None:
    """`<table>_<column>_<suffix>`, built concurrently `definition` (with the column for {})."""
    for table, names in columns.items():
        for column in names:
            name = f"{table}_{column}_{suffix}"
            drop_invalid(schema_editor, name)
            schema_editor.execute(
                f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{table}" '
                + definition.format(column)
            )


def _drop_upper_indexes(schema_editor, columns, suffix: str) -> None:
    for table, names in columns.items():
        for column in names:
            drop_index(schema_editor, f"{table}_{column}_{suffix}")
