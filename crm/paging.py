"""Pages of a list that never count all of it: a page is read with one row more than it
shows (that row says whether there is a next page), and the count stops at a cap."""

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

PAGE_SIZE = 50
COUNT_CAP = 1000  # counting more would read every matching row on each page
# A search is counted less far: its matches lie scattered through the table, and each one
# counted is a row read and tested (a common surname matches 1 in 60 of a million contacts).
SEARCH_COUNT_CAP = 200


class Filters:
    """A list's filter form (GET parameters): the valid ones apply, the others are named."""

    def value(self, name: str):
        """The cleaned value, or nothing for a parameter that was invalid."""
        return (getattr(self, "cleaned_data", None) or {}).get(name)


@dataclass
class Page:
    rows: list[Any]
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def page_of(rows: QuerySet, number: int, size: int = PAGE_SIZE, last: int | None = None) -> Page:
    """Page `number` (from 1) of `rows`; none after page `last`, if given."""
    start = (number - 1) * size
    read = list(rows[start : start + size + 1])
    more = len(read) > size and (last is None or number < last)
    return Page(read[:size], number, more)


def capped_count(rows: QuerySet, cap: int = COUNT_CAP) -> int:
    """How many rows match, counting no further than cap + 1."""
    return rows.order_by().values("pk")[: cap + 1].count()


def count_cap(searching: bool) -> int:
    return SEARCH_COUNT_CAP if searching else COUNT_CAP
