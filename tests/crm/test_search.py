"""The search box: accounts, contacts, leads and opportunities one may see (a rep and a
manager their team's, a rep only their own leads, an administrator all), found by name,
company or email, grouped by kind, a few of each with a link to the rest, in one query a kind;
and whatever is typed gets an answer in one line, never a server error."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from crm import search
from crm.links import record_url
from tests.clients import HTMX, logged_in
from tests.factories import (
    AccountFactory,
    ContactFactory,
    LeadFactory,
    OpportunityFactory,
    TeamFactory,
    UserFactory,
)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
KEYS = [kind.key for kind in search.KINDS]


@pytest.fixture
def ravi(north):
    return UserFactory(username="ravi", first_name="Ravi", role="rep", team=north)


@pytest.fixture
def manny(north):
    return UserFactory(username="manny", first_name="Manny", role="manager", team=north)


@pytest.fixture
def acme(rita, north):
    """One record of each kind, North's, all about Acme."""
    account = AccountFactory(name="Acme Industries", team=north)
    return {
        "accounts": account,
        "contacts": ContactFactory(account=account, name="Carla Jones", email="carla@acme.example"),
        "leads": LeadFactory(
            name="Lena Park", company="Parkside Acme", email="lena@parkside.example", owner=rita
        ),
        "opportunities": OpportunityFactory(account=account, name="Acme renewal", owner=rita),
    }


def found(response) -> dict[str, set[str]]:
    """The names listed under each kind."""
    return {
        group.kind.key: {str(hit.record) for hit in group.hits}
        for group in response.context["found"]
    }


def test_finds_each_kind_by_name_and_links_to_its_page(manny, acme):
    response = logged_in(manny).get("/search/?q=acme")

    assert found(response) == {
        "accounts": {"Acme Industries"},
        "contacts": {"Carla Jones"},  # by the email
        "leads": {"Lena Park"},  # by the company
        "opportunities": {"Acme renewal"},
    }
    page = response.content.decode()
    for kind, name in [
        ("accounts", "parc:account"),
        ("contacts", "mailsync:contact"),
        ("leads", "nurture:rph"),
        ("opportunities", "opportunity_detail"),
    ]:
        assert f'href="{record_url(name, acme[kind].pk)}"' in page


def test_finds_contacts_and_leads_by_email_and_leads_by_company(manny, acme):
    client = logged_in(manny)

    assert found(client.get("/search/?q=CARLA@acme"))["contacts"] == {"Carla Jones"}
    assert found(client.get("/search/?q=lena@parkside"))["leads"] == {"Lena Park"}
    assert found(client.get("/search/?q=parkside"))["leads"] == {"Lena Park"}
    assert found(client.get("/search/?q=jones")) == {
        "accounts": set(),
        "contacts": {"Carla Jones"},
        "leads": set(),
        "opportunities": set(),
    }


def test_results_are_grouped_by_kind_in_one_section_each(manny, acme):
    page = logged_in(manny).get("/search/?q=acme").content.decode()

    sections = [page.index(f'id="found-{kind}"') for kind in KEYS]
    assert sections == sorted(sections)
    assert page.count('<section class="card" id="found-') == 4
    assert page.index("Acme Industries") < sections[1] < page.index("Carla Jones")


@pytest.mark.parametrize("query", ["acme", "ac"])  # inside a name; its start, a column at a time
@pytest.mark.parametrize("role", ["rep", "manager"])
def test_another_teams_records_never_appear(role, query, acme):
    stranger = UserFactory(username=f"sam_{role}", role=role, team=TeamFactory(name="South"))

    response = logged_in(stranger).get("/search/", {"q": query})

    assert found(response) == {kind: set() for kind in KEYS}
    page = response.content.decode()
    assert "Acme Industries" not in page and "Lena Park" not in page


def test_a_rep_sees_their_teams_accounts_but_only_their_own_leads(rita, ravi, manny, acme):
    LeadFactory(name="Acme Ravi lead", owner=ravi)
    south = UserFactory(username="sam", role="rep", team=TeamFactory(name="South"))
    LeadFactory(name="Acme South lead", owner=south)

    as_ravi = found(logged_in(ravi).get("/search/?q=acme"))
    as_manny = found(logged_in(manny).get("/search/?q=acme"))

    assert as_ravi["leads"] == {"Acme Ravi lead"}  # not Rita's, though of his team
    assert as_ravi["accounts"] == {"Acme Industries"}
    assert as_ravi["opportunities"] == {"Acme renewal"}  # the team's, as TEAM_PATHS says
    assert as_manny["leads"] == {"Lena Park", "Acme Ravi lead"}


def test_an_administrator_finds_every_teams_records(administrator, acme):
    south = UserFactory(username="sam", role="rep", team=TeamFactory(name="South"))
    LeadFactory(name="Acme South lead", owner=south)

    assert found(logged_in(administrator).get("/search/?q=acme"))["leads"] == {
        "Lena Park",
        "Acme South lead",
    }


def test_at_most_a_few_of_each_kind_with_a_link_to_the_list(rita, monkeypatch):
    monkeypatch.setattr(search, "PER_KIND", 2)
    for n in range(3):
        LeadFactory(name=f"Zed {n}", owner=rita)
    OpportunityFactory.create_batch(3, name="Zed deal", owner=rita)

    with CaptureQueriesContext(connection) as queries:
        response = logged_in(rita).get("/search/?q=zed")

    # Each kind reads one row more than it shows, to know there are more, and no further.
    # (A kind sorted by name also walks up to 200 rows per row: crm.matching.)
    keys = [query["sql"] for query in queries.captured_queries if "LIMIT" in query["sql"]]
    assert sum(bool(re.search(r"LIMIT 3\b", sql)) for sql in keys) == 4
    groups = {group.kind.key: group for group in response.context["found"]}
    assert len(groups["leads"].hits) == 2 and groups["leads"].more
    assert groups["leads"].more_url == "/leads/?q=zed"
    assert 'href="/leads/?q=zed"' in response.content.decode()
    assert len(groups["opportunities"].hits) == 2 and groups["opportunities"].more
    assert groups["opportunities"].more_url is None  # no opportunity list
    assert not groups["accounts"].more and groups["accounts"].more_url is None


@pytest.mark.parametrize("rows", [1, 15])
@pytest.mark.parametrize("query", ["acme", "ac"])
def test_two_queries_a_kind_whatever_the_data(
    rows, query, manny, rita, north, django_assert_num_queries
):
    for n in range(rows):
        account = AccountFactory(name=f"Acme {n}", team=north)
        ContactFactory(account=account, name=f"Acme contact {n}")
        LeadFactory(name=f"Acme lead {n}", owner=rita)
        OpportunityFactory(account=account, name=f"Acme deal {n}", owner=rita)
    client = logged_in(manny)
    client.get("/search/")  # the session is warm, as on every page after the first

    # session, user, blocking gate; the rows of leads and of opportunities; the keys, then
    # the rows, of accounts and of contacts (shown by name: crm.search._rows)
    with django_assert_num_queries(9):
        response = client.get(f"/search/?q={query}")
    assert all(len(hits) == min(rows, search.PER_KIND) for hits in found(response).values())


def test_an_empty_query_searches_nothing(manny, django_assert_num_queries):
    client = logged_in(manny)
    client.get("/search/")

    with django_assert_num_queries(3):
        response = client.get("/search/?q=+")
    assert response.status_code == 200 and response.context["found"] == []


def test_accounts_and_contacts_come_by_name_leads_and_opportunities_newest_first(administrator):
    for name in ["Beta Acme", "Alpha Acme", "Gamma Acme"]:
        AccountFactory(name=name)
        OpportunityFactory(name=f"{name} deal", owner=administrator)
    LeadFactory(name="Old Acme lead", owner=administrator, last_activity_at=NOW - timedelta(days=9))
    LeadFactory(name="New Acme lead", owner=administrator, last_activity_at=NOW)

    groups = logged_in(administrator).get("/search/?q=acme").context["found"]

    order = {group.kind.key: [str(hit.record) for hit in group.hits] for group in groups}
    assert order["accounts"] == ["Alpha Acme", "Beta Acme", "Gamma Acme"]
    assert order["opportunities"] == ["Gamma Acme deal", "Alpha Acme deal", "Beta Acme deal"]
    assert order["leads"] == ["New Acme lead", "Old Acme lead"]  # as the lead list


def test_like_wildcards_and_backslashes_are_literal(administrator):
    for name in [
        "100% Pure",
        "1000 Pure",
        "Ann_Co",
        "AnnXCo",
        "Back\\slash",
        "Backslash",
        "A_one",
        "Atwo",
    ]:
        AccountFactory(name=name)
    client = logged_in(administrator)

    def accounts(query: str) -> set[str]:
        return found(client.get("/search/", {"q": query}))["accounts"]

    assert accounts("100%") == {"100% Pure"}
    assert accounts("ann_co") == {"Ann_Co"}
    assert accounts("ck\\sla") == {"Back\\slash"}
    assert accounts("a_") == {"A_one"}  # a short query: the start of the name, _ literal


def test_one_or_two_characters_find_what_starts_with_them(administrator):
    AccountFactory(name="Abba")
    AccountFactory(name="Cabbage")
    LeadFactory(name="Otto", company="Abacus", owner=administrator)

    response = logged_in(administrator).get("/search/?q=AB")

    assert found(response)["accounts"] == {"Abba"}
    assert found(response)["leads"] == {"Otto"}  # by the start of the company
    assert "showing what starts with “AB”" in response.content.decode()


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("ac\x00me", "Not searched: Null characters are not allowed."),
        (
            "x" * 10_000,
            "Not searched: Ensure this value has at most 200 characters (it has 10000).",
        ),
        ("%%%", "Not searched: type letters or digits; punctuation alone matches everything."),
        ("\\_ -", "Not searched: type letters or digits; punctuation alone matches everything."),
    ],
)
def test_hostile_input_gets_one_line_and_keeps_what_was_typed(
    query, problem, administrator, django_assert_num_queries
):
    AccountFactory(name="Acme")
    client = logged_in(administrator)
    client.get("/search/")

    with django_assert_num_queries(3):  # nothing searched
        response = client.get("/search/", {"q": query})

    page = response.content.decode()
    assert response.status_code == 200
    assert page.count('class="message error"') == 1 and problem in page
    if query.startswith("x"):
        assert f'value="{query}"' in page  # nothing typed is lost


@pytest.mark.parametrize("name", ["N" * 200, "N." * 100])  # inside; at the start (no 3 in a row)
def test_a_query_of_the_longest_length_is_searched(administrator, name):
    AccountFactory(name=name)
    ContactFactory(name=name, email="n@x.example")

    response = logged_in(administrator).get("/search/", {"q": name.lower()})

    assert found(response)["accounts"] == found(response)["contacts"] == {name}


def test_htmx_search_as_you_type_gets_the_same_page(manny, acme):
    response = logged_in(manny).get("/search/?q=acme", headers=HTMX)

    page = response.content.decode()
    assert '<div id="search-results">' in page and "Acme Industries" in page
    assert 'hx-select="#search-results"' in page  # htmx keeps that part of it


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's query plans")
@pytest.mark.parametrize("mode", ["inside", "start"])
def test_each_kind_is_found_through_its_indexes(administrator, mode):
    """Inside a name: the trigram indexes. At its start (one or two letters): the B-tree
    prefix indexes of crm 0010 and 0022, a range of which holds exactly the names that start
    so (crm 0022's also hold what the box shows of accounts and contacts)."""
    indexes = {
        "accounts": {"crm_account_name_trgm"},
        "contacts": {"crm_contact_name_trgm", "crm_contact_email_trgm"},
        "leads": {"rph_name_trgm", "rph_company_trgm", "rph_email_trgm"},
        "opportunities": {"crm_opportunity_name_trgm"},
    }
    if mode == "start":
        indexes = {
            "accounts": {"crm_account_name_start"},
            "contacts": {"crm_contact_name_start", "crm_contact_email_start"},
            "leads": {f"crm_rph_{column}_prefix" for column in ("name", "company", "email")},
            "opportunities": {"crm_opportunity_name_prefix"},
        }
    query = "acme" if mode == "inside" else "ac"
    with transaction.atomic(), connection.cursor() as cursor:
        # On tables this small a scan costs less than any index: rule scans out, so the plan
        # shows whether the trigram indexes can serve the query as written (UPPER(col) LIKE).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        for kind in search.KINDS:
            plan = search.matching(kind, administrator, query, mode)[:11].explain()
            assert all(index in plan for index in indexes[kind.key]), plan
            assert "Seq Scan" not in plan, plan
