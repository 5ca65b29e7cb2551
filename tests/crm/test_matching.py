"""crm.matching.first_keys: the first matches of a search in a list's order, the same as the
plain ordered query gives, in one query whatever the data; on PostgreSQL the walk of the
order is bounded, and the sorted read of every match is made only when the walk was not
enough (a block of matches late in the order: every "Zed …" after every "A…")."""

import json

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from crm import matching
from crm.matching import Search, first_keys
from crm.models import RPH, Contact
from tests.clients import logged_in
from tests.factories import AccountFactory, ContactFactory, LeadFactory, UserFactory

pytestmark = pytest.mark.django_db

ORDERS = [("name", "pk"), ("-name", "-pk"), ("-last_activity_at", "-pk")]


def plain(rows, search: Search, limit: int) -> list[int]:
    return list(rows.filter(search.q()).values_list("pk", flat=True)[:limit])


def leads(names: list[str]) -> None:
    for n, name in enumerate(names):
        LeadFactory(name=name, company="", email=f"l{n}@x.example")


SHAPES = {
    "none": ["Ann Lee"] * 8,
    "every row": ["Zed Kowalski"] * 8,
    "a block late in the order": ["Ann Lee"] * 20 + ["Zed Kowalski"] * 5,
    "a block early": ["Abe Kowalski"] * 5 + ["Ann Lee"] * 20,
    "scattered": [
        f"{first} {'Kowalski' if n % 4 == 0 else 'Lee'}"
        for n, first in enumerate(["Ann", "Ben", "Cy", "Dee", "Eve", "Fay", "Gus", "Hal"] * 3)
    ],
}


@pytest.mark.parametrize("walk", [0, 1, 2, matching.WALK_PER_ROW])
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("shape", SHAPES)
def test_the_first_keys_are_the_plain_querys(shape, order, walk):
    """With no walk, or one of one or two rows per row wanted, the sorted read answers."""
    leads(SHAPES[shape])
    rows = RPH.objects.order_by(*order)
    search = Search(("name", "company", "email"), "kowalski", walk=walk)
    for limit in (1, 3, 6, 30):
        assert first_keys(rows, search, limit) == plain(rows, search, limit)


@pytest.mark.parametrize("walk", [0, 1, matching.WALK_PER_ROW])
def test_words_at_the_start_and_literal_wildcards(walk):
    leads(["Ab Cd", "Xab", "a%b", "a_b", "axb", "A\\b", "Émile", "straße"] * 3)
    rows = RPH.objects.order_by("name", "pk")
    for query, mode in [("ab", "start"), ("ab", "inside"), ("%", "inside"), ("a_", "start")]:
        search = Search(("name",), query, mode, walk=walk)
        keys = first_keys(rows, search, 5)
        assert keys == plain(rows, search, 5)
    assert len(first_keys(rows, Search(("name",), "a%b", walk=walk), 10)) == 3  # not axb, a_b
    assert len(first_keys(rows, Search(("name",), "\\", walk=walk), 10)) == 3
    for query in ("émile", "STRASSE", "ß"):
        search = Search(("name",), query, walk=walk)
        assert first_keys(rows, search, 10) == plain(rows, search, 10)


@pytest.mark.parametrize("walk", [0, 1])
@pytest.mark.parametrize("shape", SHAPES)
def test_one_query_whatever_the_data(shape, walk, django_assert_num_queries):
    leads(SHAPES[shape])
    rows = RPH.objects.order_by("name", "pk")
    with django_assert_num_queries(1):
        first_keys(rows, Search(("name",), "kowalski", walk=walk), 3)


def test_a_list_visible_to_nobody_finds_nothing_without_a_query(django_assert_num_queries):
    leads(["Zed Kowalski"])
    with django_assert_num_queries(0):
        assert first_keys(RPH.objects.none().order_by("name"), Search(("name",), "zed"), 3) == []


@pytest.mark.parametrize(
    "url",
    ["/leads/?q=zed", "/contacts/?q=zed", "/accounts/?q=zed", "/search/?q=zed", "/search/?q=ze"],
)
@pytest.mark.parametrize("role", ["rep", "manager"])
def test_someone_in_no_team_searches_and_finds_nothing(role, url):
    """visible_to gives nobody's records to a rep or manager of no team: an empty query,
    which PostgreSQL is never sent (Django cannot compile it)."""
    leads(["Zed Kowalski"])
    ContactFactory(name="Zed Contact", account=AccountFactory(name="Zed Ltd"))
    response = logged_in(UserFactory(role=role, team=None)).get(url)
    assert response.status_code == 200
    assert "Zed" not in response.content.decode().replace('value="zed"', "")


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _explained(names: list[str], limit: int, walk: int = 2) -> tuple[list[int], list[dict]]:
    leads(names)
    rows = RPH.objects.order_by("name", "pk")
    search = Search(("name",), "kowalski", walk=walk)
    with CaptureQueriesContext(connection) as captured:
        keys = first_keys(rows, search, limit)
    sql = captured.captured_queries[-1]["sql"]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
        (document,) = cursor.fetchone()
    plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
    assert keys == plain(rows, search, limit)
    return keys, list(_nodes(plan))


def _every_was_read(nodes: list[dict]) -> bool:
    """The sorted read ran: a scan of the table outside the walk's CTEs."""
    return any(n["Actual Loops"] > 0 for n in _sorted_read(nodes))


def _sorted_read(nodes: list[dict]) -> list[dict]:
    """The scans of a table outside the walk's CTEs (InitPlans): the sorted read's."""
    walk = {
        id(n) for top in nodes if top.get("Parent Relationship") == "InitPlan" for n in _nodes(top)
    }
    return [n for n in nodes if "Relation Name" in n and id(n) not in walk]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
def test_a_walk_that_finds_enough_never_reads_every_match():
    keys, nodes = _explained(["Abe Kowalski"] * 5 + ["Ann Lee"] * 20, 3)
    assert len(keys) == 3
    assert not _every_was_read(nodes)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
@pytest.mark.parametrize(("walk", "most", "read"), [(2, 40_000, 6), (200, 4, 4)])
def test_a_block_late_in_the_order_is_not_walked_to(walk, most, read, monkeypatch):
    """Limit 3, two rows walked per row wanted: six rows of the order are read, no more (or
    MOST_WALKED, if fewer), and the five "Zed Kowalski" after twenty "Ann Lee" come from the
    sorted read."""
    monkeypatch.setattr(matching, "MOST_WALKED", most)
    keys, nodes = _explained(["Ann Lee"] * 20 + ["Zed Kowalski"] * 5, 3, walk)
    assert len(keys) == 3
    assert _every_was_read(nodes)
    limits = [n.get("Actual Rows", 0) for n in nodes if n["Node Type"] == "Limit"]
    assert read in limits, "the walk reads the rows of its budget"
    assert max(limits) <= read


def test_a_list_walks_only_an_order_an_index_holds_with_its_filters(rita, north):
    """The leads' latest-activity orders, the contacts' and accounts' orders, unless a filter
    no index holds with them comes in: then PostgreSQL's own plan reads them (walk 0)."""
    from crm import accounts, contacts
    from crm import leads as lead_list

    manager = UserFactory(role="manager", team=north)

    def walk(module, form_class, **params) -> int:
        form = form_class({"q": "kowalski", **params}, user=manager)
        assert form.is_valid(), form.errors
        return module.search_of(form).walk

    assert walk(lead_list, lead_list.LeadFilterForm) == 100
    assert walk(lead_list, lead_list.LeadFilterForm, sort="activity", owner=rita.pk) == 100
    assert walk(lead_list, lead_list.LeadFilterForm, sort="name") == 0
    assert walk(lead_list, lead_list.LeadFilterForm, status="new") == 0
    assert walk(contacts, contacts.ContactFilterForm, sort="status") == matching.WALK_PER_ROW
    assert walk(contacts, contacts.ContactFilterForm, owner=rita.pk) == 0
    assert walk(accounts, accounts.AccountFilterForm, sort="-created") == matching.WALK_PER_ROW
    assert walk(accounts, accounts.AccountFilterForm, manager=rita.pk) == matching.WALK_PER_ROW
    assert walk(accounts, accounts.AccountFilterForm, sort="-created", manager=rita.pk) == 0


def contacts(rows: list[tuple[str, str]]) -> None:
    account = AccountFactory()
    for name, email in rows:
        ContactFactory(name=name, email=email, account=account)


START = [
    ("Ann Lee", "ann@x.example"),
    ("Ben Noble", "no.reply@x.example"),  # its email starts with "no", not its name
    ("Nora Lee", "nora@x.example"),  # both
    ("nOel Cox", "c@x.example"),  # its name
    ("Zoe No", "z@x.example"),  # neither: "no" is inside
    ("Nora Kent", "NORA.K@x.example"),  # both
]


@pytest.mark.parametrize("walk", [0, 1, 2, matching.WALK_PER_ROW])
def test_the_start_of_a_name_or_an_email_is_read_a_column_at_a_time(walk):
    """At the start of a name, each column is read alone (Search.parts): a contact whose name
    and email both start with the letters is found once, in its place."""
    contacts(START * 3)
    rows = Contact.objects.order_by("name", "pk")
    search = Search(("name", "email"), "no", "start", walk=walk)
    assert len(search.parts()) == 2 and len(Search(("name", "email"), "nor").parts()) == 1
    for limit in (1, 3, 6, 10, 30):
        keys = first_keys(rows, search, limit)
        assert keys == plain(rows, search, limit)
        assert len(keys) == len(set(keys)) == min(limit, 12)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
def test_the_start_of_a_name_is_read_from_its_index_alone():
    """crm 0022's indexes hold what the sorted read needs (the name, the key, the team, the
    email): with the table's scans ruled out, PostgreSQL reads them alone (on tables this
    small it would scan them otherwise)."""
    contacts(START * 3)
    rows = Contact.objects.filter(team__isnull=False).order_by("name", "pk")
    search = Search(("name", "email"), "no", "start", walk=1)
    with CaptureQueriesContext(connection) as captured:
        keys = first_keys(rows, search, 5)
    assert keys == plain(rows, search, 5)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + captured.captured_queries[-1]["sql"])
        (document,) = cursor.fetchone()
    plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
    nodes = list(_nodes(plan))
    assert _every_was_read(nodes)
    read = {(n["Node Type"], n["Index Name"]) for n in _sorted_read(nodes)}
    assert read == {
        ("Index Only Scan", "crm_contact_name_start"),
        ("Index Only Scan", "crm_contact_email_start"),
    }
