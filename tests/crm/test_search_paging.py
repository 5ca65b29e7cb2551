"""A search's pages (crm.paging.listed): its matches' keys read once, in order and capped,
are its count and its page's keys; every page, within the cap and past it, shows what the
ordered list itself holds there."""

import pytest

from crm import paging
from crm.models import RPH
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def matching():
    return RPH.objects.filter(name__icontains="acme").order_by("name", "pk")


def expected(number: int, size: int) -> list[int]:
    every = list(matching().values_list("pk", flat=True))
    return every[(number - 1) * size : number * size]


@pytest.mark.parametrize("in_order", [True, False])
@pytest.mark.parametrize("matches", [0, 4, 5, 6, 12])
def test_every_page_of_a_search_shows_the_lists_rows_in_order(matches, in_order):
    for n in range(matches):
        LeadFactory(name=f"Acme {n % 3}")  # equal names: the key breaks the tie
    LeadFactory(name="Other")

    for number in range(1, 7):
        shown = paging.listed(matching(), number, 3, searching=True, cap=5, in_order=in_order)

        assert [lead.pk for lead in shown.page.rows] == expected(number, 3)
        assert shown.page.has_next == (number * 3 < matches)
        assert shown.count == min(matches, 6)
        assert shown.more == (matches > 5)


@pytest.mark.parametrize("in_order", [True, False])
def test_a_search_within_the_cap_hands_back_every_key(in_order):
    for n in range(4):
        LeadFactory(name=f"Acme {3 - n}")

    shown = paging.listed(matching(), 1, 3, searching=True, cap=5, in_order=in_order)

    assert sorted(shown.keys) == sorted(matching().values_list("pk", flat=True))
    if in_order:
        assert shown.keys == list(matching().values_list("pk", flat=True))
    assert paging.listed(matching(), 1, 3, searching=True, cap=3).keys is None  # 4 > 3


@pytest.mark.parametrize("in_order", [True, False])
@pytest.mark.parametrize("matches", [4, 12])
def test_a_search_page_costs_two_queries(matches, in_order, django_assert_num_queries):
    for n in range(matches):
        LeadFactory(name=f"Acme {n}")

    for number in (1, 2, 3) if matches == 12 else (1, 2):  # within the keys read, past them
        with django_assert_num_queries(2):  # the keys, then the page's rows
            paging.listed(matching(), number, 3, searching=True, cap=5, in_order=in_order)


def test_a_list_that_is_not_a_search_is_counted_to_its_own_cap():
    for n in range(3):
        LeadFactory(name=f"Acme {n}")

    shown = paging.listed(matching(), 1, 2, searching=False)

    assert (shown.count, shown.cap, shown.keys) == (3, paging.COUNT_CAP, None)
    assert [lead.pk for lead in shown.page.rows] == expected(1, 2) and shown.page.has_next
