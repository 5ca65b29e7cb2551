"""A search's pages (crm.paging.listed): its matches' keys read once, in order, to the cap
or to the end of a page past it, are its count and its page's keys; every page, within the
cap and past it, shows what the ordered list itself holds there, whether the keys came from
a walk of the list's order or from the sorted read of every match (crm.matching)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm import paging
from crm.matching import Search
from crm.models import RPH
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def unsearched():
    return RPH.objects.order_by("name", "pk")


def matching():
    return unsearched().filter(name__icontains="acme")


@pytest.fixture(params=["searched", "walked", "walked a row a row", "planned"])
def listed(request):
    """paging.listed four ways: rows searched already (`searching`), and the list with its
    `search`, answered by the walk (of 200 rows per row wanted), by the sorted read of every
    match (a walk of one row per row wanted finds too few), or by PostgreSQL's plan (walk 0)."""
    walk = {"walked": 200, "walked a row a row": 1, "planned": 0}.get(request.param)

    def read(number: int, size: int, **kwargs) -> paging.Listed:
        if walk is None:
            return paging.listed(matching(), number, size, searching=True, **kwargs)
        search = Search(("name",), "acme", walk=walk)
        return paging.listed(unsearched(), number, size, search=search, **kwargs)

    return read


def expected(number: int, size: int) -> list[int]:
    every = list(matching().values_list("pk", flat=True))
    return every[(number - 1) * size : number * size]


@pytest.mark.parametrize("matches", [0, 4, 5, 6, 12])
def test_every_page_of_a_search_shows_the_lists_rows_in_order(matches, listed):
    LeadFactory(name="Abe")  # before every match in the list's order
    for n in range(matches):
        LeadFactory(name=f"Acme {n % 3}")  # equal names: the key breaks the tie
    LeadFactory(name="Other")

    for number in range(1, 7):
        shown = listed(number, 3, cap=5)

        assert [lead.pk for lead in shown.page.rows] == expected(number, 3)
        assert shown.page.has_next == (number * 3 < matches)
        assert shown.count == min(matches, 6)
        assert shown.more == (matches > 5)


def test_a_search_within_the_cap_hands_back_every_key(listed):
    for n in range(4):
        LeadFactory(name=f"Acme {3 - n}")

    shown = listed(1, 3, cap=5)

    assert shown.keys == list(matching().values_list("pk", flat=True))
    assert listed(1, 3, cap=3).keys is None  # 4 > 3


@pytest.mark.parametrize("matches", [4, 12])
def test_a_search_page_costs_two_queries(matches, listed, django_assert_num_queries):
    for n in range(matches):
        LeadFactory(name=f"Acme {n}")

    for number in (1, 2, 3) if matches == 12 else (1, 2):  # within the keys read, past them
        with django_assert_num_queries(2):  # the keys, then the page's rows
            listed(number, 3, cap=5)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="crm.matching's walk")
def test_a_page_past_the_cap_reads_its_keys_as_the_first_pages_do():
    """Its keys, to the end of the page, by first_keys (the bounded walk, then the sorted
    read), not an OFFSET in the list's order, which walked to a first name's block (page 3
    of "zeno": 1.7 s over a million contacts)."""
    for n in range(12):
        LeadFactory(name=f"Acme {n}")

    with CaptureQueriesContext(connection) as captured:
        shown = paging.listed(unsearched(), 3, 3, search=Search(("name",), "acme", walk=1), cap=5)

    assert [lead.pk for lead in shown.page.rows] == expected(3, 3) and shown.count == 6
    assert len(captured) == 2 and captured.captured_queries[0]["sql"].startswith("WITH walked")
    assert not any("OFFSET 6" in query["sql"] for query in captured.captured_queries)


def test_a_list_that_is_not_a_search_is_counted_to_its_own_cap():
    for n in range(3):
        LeadFactory(name=f"Acme {n}")

    shown = paging.listed(matching(), 1, 2, searching=False)

    assert (shown.count, shown.cap, shown.keys) == (3, paging.COUNT_CAP, None)
    assert [lead.pk for lead in shown.page.rows] == expected(1, 2) and shown.page.has_next
