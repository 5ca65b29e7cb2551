"""The navigation: every CRM page a user works in, and the search box, one click away; a
finance user's is their invoices, not the sales pages they have no records in."""

import re

from tests.clients import logged_in
from tests.factories import UserFactory

SALES = ["/leads/", "/contacts/", "/accounts/"]


def nav_links(user) -> list[str]:
    page = logged_in(user).get("/").content.decode()
    nav = re.search(r"<nav>(.*?)</nav>", page, re.S)[1]
    return re.findall(r'(?:href|action)="([^"]+)"', nav)


def test_a_rep_reaches_every_crm_page_and_the_search_box(rita):
    links = nav_links(rita)

    assert set(SALES + ["/invoices/", "/mail/", "/search/"]) <= set(links)


def test_the_search_box_keeps_what_was_searched(rita):
    page = logged_in(rita).get("/search/?q=acme").content.decode()

    assert re.search(r'<input type="search" name="q"[^>]*value="acme"', page)


def test_a_finance_user_gets_invoices_not_the_sales_pages(db):
    fern = UserFactory(username="fern", role="finance")

    links = nav_links(fern)

    assert "/invoices/" in links and "/search/" in links
    assert not set(SALES) & set(links)
