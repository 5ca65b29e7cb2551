"""The first rows of a list, in its order, that a search box's words match, read in a time
that does not hang on PostgreSQL's guess of how many rows match.

Asked for the first few matches in a list's order, PostgreSQL walks the order's index testing
each row when it thinks matches are common, and reads the trigram indexes and sorts when it
thinks they are rare. It guesses how common a LIKE '%…%' is from a sample, and assumes the
matches are spread evenly along the order. Both fail on the searches people make: a first name
searched in a list sorted by name sits in one block of it (an administrator's search for
"nora" walked 600,000 contacts, 660 ms), and a rare address guessed at 1 % walked a million
leads for a manager (150 ms). So the two reads are made in turn, each bounded:

1. the list's order is walked for at most `Search.walk` rows per row wanted (WALK_PER_ROW),
   testing each: a search whose matches are one row in 200 or more commonly (a surname)
   ends here;
2. otherwise every match is read from the search indexes (each part behind OFFSET 0, so
   planned for all of them) and sorted: few rows, or a block the walk did not reach. The
   first letters of a name ("no" of every "Nora …") are read from B-tree indexes that hold
   the list's columns (crm 0022), without the table: 50,000 matches in 15 ms.

Both are one statement, whose second part runs only when the first was not enough (but for
Search.read BITMAP: two, the second in a transaction of its own settings). A list no longer
than a walk (a rep's own leads) is not walked at all: its matches are read from the search
indexes, as PostgreSQL plans it, and sorted.

SQLite (demo and test data) has no such planner: the plain query is read there."""

# ruff: noqa: S608 - SQL is built here from Django's compiled queries and our own names

import re
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction
from django.db.models import F, Func, Lookup, OrderBy, Q, QuerySet, TextField
from django.db.models.lookups import IContains

WALK_PER_ROW = 200  # by default a walk gives up below one match in 200 rows
MOST_WALKED = 40_000  # and never reads more rows than this, whatever the limit
PLANNED, BITMAP, TAILS = "planned", "bitmap", "tails"  # Search.read
TRIGRAM = 3  # the shortest run of letters or digits a trigram index can look for inside text
TRIGRAM_WORD = re.compile(rf"[^\W_]{{{TRIGRAM}}}")
WORD_CHARACTER = re.compile(r"[^\W_]")
PUNCTUATION_ALONE = "type letters or digits; punctuation alone matches everything."
# A team's list whose matches the sorted read finds in an index of the team's own (Search.read
# BITMAP, crm 0025) gives up sooner: reading a team's matches costs a tenth of everyone's (a
# first name's 2,500 contacts: 8 ms), while a row walked costs the same (0.55 µs). A surname
# in one row of 100 is still found by the walk (a team's 1,000 matches would take 4 ms more).
TEAM_WALK_PER_ROW = 100
# PostgreSQL costs reading a trigram index by the trigrams it looks up, about one a character
# of the words, and guesses that words nobody has match one row in 10,000 (the floor of its
# estimate): past 22 to 26 characters it costs the index above walking the whole list, and
# walked a million leads (1.4 s) for an administrator's 26 letters nobody has. So the index
# is read for INDEXED characters at most (contains), and the whole words tested on what it
# finds.
INDEXED = 16


@dataclass(frozen=True)
class Search:
    """A search box's words, looked for in `fields` of a list's rows: anywhere in them
    ("inside", icontains as `contains` reads it) or at their start ("start", istartswith,
    for one or two letters: search_mode).

    `walk`: how many rows of the list's order are walked per row wanted (first_keys). 0 leaves
    the read to PostgreSQL's own plan, for an order no index holds with the list's filters:
    a walk would read the other teams' rows too (a manager's leads by name: a million rows),
    and sorting every match of a common word (a company's "GmbH") reads a fifth of them."""

    fields: tuple[str, ...]
    query: str
    mode: str = "inside"
    walk: int = WALK_PER_ROW
    # How the sorted read of a search inside the text reads every match (first_keys):
    # PLANNED, as PostgreSQL plans it; BITMAP, from the search indexes alone, where an index
    # holds the list's scope with the words (a team's contacts, crm 0025): PostgreSQL costs
    # testing each of a team's 100,000 names in its name index below reading the 2,500
    # matches from the table, and took 45 ms where these take 8; TAILS, the words at the
    # start of each field from its start index, without the table, and the words further in
    # from the tail index (crm 0025), where a common first name starts 25,000 of everyone's
    # contacts on every page of the table.
    read: str = PLANNED

    def __bool__(self) -> bool:
        return bool(self.query)

    @property
    def reading(self) -> str:
        """`read`, for words a trigram index can look for (three letters or digits in a row);
        PLANNED for any other (an index of trigrams would be read whole for "qz")."""
        return self.read if TRIGRAM_WORD.search(self.query) else PLANNED

    def q(self) -> Q:
        matches = Q()
        for test in self._tests():
            matches |= test
        return matches

    def parts(self) -> list[Q]:
        """The matches in parts that one index each reads: at the start of a name, one part
        a field (a range of its B-tree index, which also holds what a list needs, crm 0022);
        inside a name, all fields at once (one bitmap of their trigram indexes), or (TAILS)
        the start of each field and, in one more part, what is found past the first
        character of any (their tail index): a row that has the words at the start of a
        field and further in comes twice, and first_keys keeps it once."""
        tests = self._tests()
        if self.mode == "start" and tests:
            return tests
        if self.reading == TAILS and tests:
            further, piece = Q(), indexed(self.query)
            for field in self.fields:
                found = Q(_TailContains(_Tail(F(field)), piece))
                further |= _within(found, field, self.query, piece)
            return [*self._starts(), further]
        return [self.q()]

    def _tests(self) -> list[Q]:
        if self.mode == "inside":
            return [contains(field, self.query) for field in self.fields]
        return self._starts()

    def _starts(self) -> list[Q]:
        return [Q(**{f"{field}__istartswith": self.query}) for field in self.fields]

    def pattern(self, connection) -> str:
        """The LIKE pattern Django gives the lookup: %, _ and \\ taken literally."""
        words = connection.ops.prep_for_like_query(self.query)
        return f"%{words}%" if self.mode == "inside" else f"{words}%"


def search_mode(words: str) -> str:
    """How a search box's words are looked for (Search.mode): "inside" a name, from three
    letters or digits in a row (a trigram index reads them); at the "start" of a name for
    one or two (a B-tree prefix index reads them: inside, every row would be tested); ""
    when there is nothing to look for (only punctuation or spaces)."""
    if TRIGRAM_WORD.search(words):
        return "inside"
    if WORD_CHARACTER.search(words):
        return "start"
    return ""


def contains(field: str, words: str, piece: str = "") -> Q:
    """`field` holds `words`, in any case (icontains), read from its trigram index for
    INDEXED characters of the words at most: longer words are looked for by a piece of them
    (indexed), or by the `piece` of them a caller knows to be rarer, and the rows found
    tested on the whole words. %, _ and \\ are literal."""
    piece = indexed(piece or words)
    return _within(Q(**{f"{field}__icontains": piece}), field, words, piece)


def indexed(words: str) -> str:
    """The piece of `words` a trigram index is read for: INDEXED characters from their first
    three letters or digits in a row (a piece without any would read the index whole), or
    the words themselves if no longer."""
    if len(words) <= INDEXED:
        return words
    run = TRIGRAM_WORD.search(words)
    start = run.start() if run else 0
    return words[start : start + INDEXED]


def _within(found: Q, field: str, words: str, piece: str) -> Q:
    """`found`, the rows an index finds for `piece` of `words`, narrowed to those whose
    `field` holds the whole words, in any case (icontains of _Unindexed), a test made only
    on the rows found."""
    if piece == words:  # the index was read for the whole words
        return found
    return found & Q(IContains(_Unindexed(F(field)), words))


class _Unindexed(Func):
    """A text as it is, written so that neither the column's indexes nor its statistics
    apply: PostgreSQL then guesses that long words match next to nothing (a fixed share per
    character), and reads the index for the piece (contains), whatever share of the rows it
    guesses the piece is in ("Prism Vertex Gmb", a company of 400 leads: with the words
    tested by strpos, guessed at a third of the rows, it walked the million of them)."""

    template = "(%(expressions)s || '')"
    output_field = TextField()


class _Tail(Func):
    """A text upper-cased, but its first character: what the tail index holds (crm 0025)."""

    template = "substr(UPPER(%(expressions)s::text), 2)"
    output_field = TextField()


class _TailContains(Lookup):
    """The words (or their piece, indexed) in a _Tail, as icontains finds them:
    UPPER(…) LIKE UPPER('%…%')."""

    lookup_name = "tail_contains"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        words = connection.ops.prep_for_like_query(self.rhs)
        return f"{lhs} LIKE UPPER(%s)", (*lhs_params, f"%{words}%")


def first_keys(rows: QuerySet, search: Search, limit: int) -> list[Any]:
    """The keys of the first `limit` rows of `rows` (a list, ordered) that `search` matches,
    in order. One query (two for Search.read BITMAP, the second only when needed): on
    PostgreSQL the walk, and the sorted read of every match only when the walk found fewer
    than `limit`, or the list is no longer than a walk."""
    matching = rows.filter(search.q())
    connection = connections[rows.db]
    if connection.vendor != "postgresql" or not search.walk:
        return list(matching.values_list("pk", flat=True)[:limit])
    if rows.query.is_empty():  # visible to nobody (a user with no team): nothing to compile
        return []
    order = _order(matching)
    parts = [_compiled(_every(rows.filter(part)), rows.db) for part in search.parts()]
    walk = min(search.walk * limit, MOST_WALKED)
    walked, walked_params = _walked(connection, rows, search, walk)
    beyond, beyond_params = _compiled(rows.order_by().values("pk")[walk : walk + 1], rows.db)
    if search.reading == BITMAP and search.mode == "inside":
        return _walked_then_read(
            connection, (walked, walked_params), (beyond, beyond_params), parts, order, limit
        )
    # Each branch runs only if its one-time filter holds (PostgreSQL reads a CTE only when it
    # is scanned, and the parts of the sorted read not at all when their branch's filter is
    # false): a list of no more rows than the walk's (a rep's leads) is never walked (its
    # matches are read from the search indexes), and the sorted read is never made when the
    # walk is enough. Both give the order's columns, and the rows (no more than `limit`) are
    # sorted on them.
    # The sorted read's parts are fenced with OFFSET 0: PostgreSQL plans each for all of its
    # rows (under the ORDER BY … LIMIT it would walk the order's index, taking the matches
    # for spread along it) without storing them as a CTE would (15 ms for 50,000 matches).
    # A row two parts match comes twice: the first `limit` of each part are enough, then
    # DISTINCT (_sorted_read).
    read, read_params = _sorted_read(
        parts,
        order,
        limit,
        "WHERE NOT (SELECT more FROM more) OR (SELECT count(*) FROM walked) < %s",
        (limit,),
    )
    sql = (
        f"WITH walked AS MATERIALIZED ({walked} LIMIT %s),"
        f" more AS MATERIALIZED (SELECT EXISTS ({beyond}) AS more)"
        " SELECT sorted_key FROM ("
        " (SELECT * FROM walked WHERE (SELECT more FROM more)"
        "  AND (SELECT count(*) FROM walked) = %s)"
        f" UNION ALL ({read})"
        f") found ORDER BY {order}"
    )
    params = (*walked_params, limit, *beyond_params, limit, *read_params)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _walked_then_read(connection, walked, beyond, parts, order, limit) -> list[Any]:
    """first_keys in two statements: the walk (as in the one statement), then, only if it
    found too few, the sorted read with PostgreSQL's index scans turned off for it alone, so
    that the matches are read from the search indexes (a bitmap), never by testing each row
    of an index of the list's scope (Search.read BITMAP)."""
    (walked_sql, walked_params), (beyond_sql, beyond_params) = walked, beyond
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH walked AS MATERIALIZED ({walked_sql} LIMIT %s),"
            f" more AS MATERIALIZED (SELECT EXISTS ({beyond_sql}) AS more)"
            f" SELECT sorted_key FROM walked WHERE (SELECT more FROM more) ORDER BY {order}",
            (*walked_params, limit, *beyond_params),
        )
        keys = [row[0] for row in cursor.fetchall()]
    if len(keys) == limit:  # the list is longer than the walk, which found enough
        return keys
    read, params = _sorted_read(parts, order, limit)
    sql = f"SELECT sorted_key FROM ({read}) AS found ORDER BY {order}"
    outermost = connection.get_autocommit()  # else the transaction goes on after the read
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('enable_indexscan'), current_setting('enable_indexonlyscan'),"
            " set_config('enable_indexscan', 'off', true),"
            " set_config('enable_indexonlyscan', 'off', true)"
        )
        index, index_only, *_ = cursor.fetchone()
        cursor.execute(sql, params)
        keys = [row[0] for row in cursor.fetchall()]
        if not outermost:  # a setting made for the transaction would outlive the read
            cursor.execute(
                "SELECT set_config('enable_indexscan', %s, true),"
                " set_config('enable_indexonlyscan', %s, true)",
                (index, index_only),
            )
    return keys


def _sorted_read(
    parts: list[tuple[str, tuple]], order: str, limit: int, where: str = "", where_params=()
) -> tuple[str, tuple]:
    """The first `limit` matches of `parts` (compiled _every querysets) in order, each once,
    `where` holds: each part fenced with OFFSET 0, so planned for all of its rows; a row two
    parts match comes twice, so the first `limit` of each are kept, then DISTINCT."""
    every = " UNION ALL ".join(f"({sql} OFFSET 0)" for sql, _ in parts)
    sql = (
        f"SELECT DISTINCT * FROM (SELECT * FROM ({every}) AS every {where}"
        f" ORDER BY {order} LIMIT %s) AS top ORDER BY {order} LIMIT %s"
    )
    params = (
        *(param for _, part_params in parts for param in part_params),
        *where_params,
        limit * len(parts),
        limit,
    )
    return sql, params


def _compiled(queryset: QuerySet, using: str) -> tuple[str, tuple]:
    return queryset.query.get_compiler(using=using).as_sql()


def _sorted_columns(matching: QuerySet) -> dict[str, Any]:
    """The list's order as named columns, sorted_0, sorted_1…"""
    return {f"sorted_{n}": _expression(item) for n, item in enumerate(matching.query.order_by)}


def _walked(connection, rows: QuerySet, search: Search, walk: int) -> tuple[str, tuple]:
    """The matches among the first `walk` rows of the list, in order, with their key
    (sorted_key) and the order's columns."""
    searched = {f"searched_{n}": F(field) for n, field in enumerate(search.fields)}
    columns = _sorted_columns(rows)
    first = rows.annotate(sorted_key=F("pk"), **columns, **searched)
    sql, params = _compiled(first.values_list("sorted_key", *columns, *searched)[:walk], rows.db)
    # Django's icontains and istartswith on PostgreSQL, on the walked rows' columns.
    tests = " OR ".join(f"UPPER(w.{column}::text) LIKE UPPER(%s)" for column in searched)
    keep = ", ".join(["w.sorted_key", *(f"w.{column}" for column in columns)])
    pattern = search.pattern(connection)
    return (
        f"SELECT {keep} FROM ({sql}) AS w WHERE {tests}",
        (*params, *[pattern] * len(searched)),
    )


def _every(matching: QuerySet) -> QuerySet:
    """Every match, in no order, with its key (sorted_key) and the order's columns."""
    columns = _sorted_columns(matching)
    every = matching.order_by().annotate(sorted_key=F("pk"), **columns)
    return every.values_list("sorted_key", *columns)


def _order(matching: QuerySet) -> str:
    """The list's order, on the columns of _sorted_columns."""
    items = matching.query.order_by
    return ", ".join(f"sorted_{n} {_direction(item)}" for n, item in enumerate(items))


def _expression(item: Any) -> Any:
    if isinstance(item, str):
        return F(item.removeprefix("-"))
    if isinstance(item, OrderBy):
        return item.expression
    return item


def _direction(item: Any) -> str:
    """ASC or DESC, with Django's place for NULLs (PostgreSQL's default) unless one is named."""
    if isinstance(item, str):
        return "DESC" if item.startswith("-") else "ASC"
    if isinstance(item, OrderBy):
        direction = "DESC" if item.descending else "ASC"
        if item.nulls_first:
            return f"{direction} NULLS FIRST"
        if item.nulls_last:
            return f"{direction} NULLS LAST"
        return direction
    return "ASC"
