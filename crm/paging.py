"""Pages of a list that never count all of it: a page is read with one row more than it
shows (that row says whether there is a next page), and the count stops at a cap. A search
reads its matches' keys once, in order, up to the cap or, for a page past it, to the page's
end (crm.matching): that read is both the count and the page's keys, and the page's rows are
then read by key."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from crm.matching import PUNCTUATION_ALONE, Search, first_keys, search_mode
from crm.models import User
from crm.templating import rendered

PAGE_SIZE = 50
COUNT_CAP = 1000  # counting more would read every matching row on each page
# A search is counted less far: its matches lie scattered through the table, and each one
# counted is a row read and tested (a common surname matches 1 in 60 of a million contacts:
# 6,000 rows for 100).
SEARCH_COUNT_CAP = 100


class Filters:
    """A list's filter form (GET parameters): the valid ones apply, the others are named."""

    def value(self, name: str):
        """The cleaned value, or nothing for a parameter that was invalid."""
        return (getattr(self, "cleaned_data", None) or {}).get(name)

    def query(self) -> str:
        """What the search box holds, trimmed; "" for none (or one refused: a NUL, too long,
        punctuation alone)."""
        return (self.value("q") or "").strip()

    def clean_q(self) -> str:
        words = (self.cleaned_data.get("q") or "").strip()  # type: ignore[attr-defined]
        if words and not search_mode(words):
            raise forms.ValidationError(PUNCTUATION_ALONE)
        return words

    def search(self, fields: tuple[str, ...], **how: Any) -> Search:
        """The search box's words, looked for in `fields` (crm.matching.Search): inside them
        from three letters or digits in a row, at their start for one or two."""
        words = self.query()
        return Search(fields, words, search_mode(words), **how)


@dataclass
class Page:
    rows: list[Any]
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def page_of(
    rows: QuerySet, number: int, size: int = PAGE_SIZE, last: int | None = None, read=list
) -> Page:
    """Page `number` (from 1) of `rows`, read by `read`; none after page `last`, if given."""
    start = (number - 1) * size
    found = read(rows[start : start + size + 1])
    more = len(found) > size and (last is None or number < last)
    return Page(found[:size], number, more)


def capped_count(rows: QuerySet, cap: int = COUNT_CAP) -> int:
    """How many rows match, counting no further than cap + 1."""
    return rows.order_by().values("pk")[: cap + 1].count()


def count_cap(searching: bool) -> int:
    return SEARCH_COUNT_CAP if searching else COUNT_CAP


@dataclass
class Listed:
    page: Page
    count: int  # no further than cap + 1
    cap: int
    # Every matching key, when a search read them all (no more than the cap match).
    keys: list[Any] | None = None

    @property
    def more(self) -> bool:
        return self.count > self.cap

    def context(self) -> dict[str, Any]:
        """What a list's template shows of it: the page, and the count up to its cap."""
        return {"page": self.page, "count": self.count, "more": self.more, "cap": self.cap}


def listed(
    rows: QuerySet,
    number: int,
    size: int = PAGE_SIZE,
    *,
    searching: bool = False,
    search: Search | None = None,
    cap: int | None = None,
    last: int | None = None,
    read: Callable[[QuerySet], list[Any]] = list,
) -> Listed:
    """Page `number` of `rows` and how many there are (up to the cap), in two queries. The
    page's rows are read by `read` (model instances by default; a list may read only the
    columns it shows, as values).

    A list is counted, then its page read. A search's matches are scattered: counting them
    reads as many rows as ordering them, so their keys are read once, in order and capped
    (the count), and the page's rows then by key. A page past the keys read is read as a
    list's is, but for `search`, whose keys are read to the end of a page past the cap (an
    OFFSET in the list's order walked to a first name's block: page 3 of "zeno", 1.7 s for
    an administrator's contacts; now 48 ms, page 1,000 of a first name 0.1–0.17 s).

    With `search`, `rows` is the list before the search, and the keys are read by
    crm.matching.first_keys: in bounded time whatever PostgreSQL guesses of the words. With
    `searching` alone, `rows` is searched already, and its keys are read by one query."""
    searching = searching or bool(search)
    cap = cap or count_cap(searching)
    if not searching:
        return Listed(page_of(rows, number, size, last, read), capped_count(rows, cap), cap)
    start = (number - 1) * size
    if search:  # the keys to the cap, or to the page's end past it
        keys = first_keys(rows, search, max(cap, start + size) + 1)
        rows, count = rows.filter(search.q()), min(len(keys), cap + 1)
    else:
        keys = list(rows.values_list("pk", flat=True)[: cap + 1])
        count = len(keys)
        if count > cap and start + size >= count:  # a page past the keys read
            return Listed(page_of(rows, number, size, last, read), count, cap)
    known = keys[start : start + size + 1]
    more = len(known) > size and (last is None or number < last)
    page = Page(rows_by_key(rows, known[:size], read), number, more)
    return Listed(page, count, cap, keys if count <= cap else None)


def rows_by_key(rows: QuerySet, keys: list[Any], read=list) -> list[Any]:
    """The rows of `rows` with these keys, in the keys' order, in one query (read by `read`).
    A row deleted since its key was read is left out, not shown as an error."""
    by_key = {row.pk: row for row in read(rows.filter(pk__in=keys))}
    return [by_key[key] for key in keys if key in by_key]


def rows_as(row: type, rows: QuerySet, columns: tuple[str, ...], person: str = "") -> list[Any]:
    """`rows` read as `row`s, from their `columns` as values rather than model instances (a
    contact, its account and its account manager built for each row took 2 of a list page's
    3 ms of reading). With `person`, a relation to a user, that user's name (User.label_of)
    comes last, "" for none."""
    if not person:
        return [row(*values) for values in rows.values_list(*columns)]
    names = [f"{person}__{column}" for column in User.LABEL_FIELDS]
    return [
        row(*values, User.label_of(first, last, username) if username else "")
        for *values, first, last, username in rows.values_list(*columns, *names)
    ]


def list_response(
    request: HttpRequest, page_template: str, rows_template: str, context: dict[str, Any]
) -> HttpResponse:
    """A list's page, or its rows alone for htmx (a filter, a page): the rows are a Jinja2
    template (crm.templating), rendered first and put in the page as `rows_html`."""
    rows = rendered(request, rows_template, context)
    if request.htmx and not request.htmx.history_restore_request:  # type: ignore[attr-defined]
        response = HttpResponse(rows)
    else:
        response = render(request, page_template, {**context, "rows_html": rows})
    patch_vary_headers(response, ["HX-Request"])
    return response
