"""crm.matching.first_keys: the first matches of a search in a list's order, the same as the
plain ordered query gives, in one query whatever the data; on PostgreSQL the walk of the
order is bounded, and the sorted read of every match is made only when the walk was not
enough (a block of matches late in the order: every "Zed …" after every "A…")."""

import dataclasses
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
    # At the start of a name, further in, and both (a row two parts of TAILS find).
    "at the start and further in": ["Ann Lee"] * 10
    + ["Kowalski Kowalski"] * 6
    + ["Kowalski Ann"] * 4
    + ["Zed Kowalski"] * 4,
    "scattered": [
        f"{first} {'Kowalski' if n % 4 == 0 else 'Lee'}"
        for n, first in enumerate(["Ann", "Ben", "Cy", "Dee", "Eve", "Fay", "Gus", "Hal"] * 3)
    ],
}


@pytest.mark.parametrize("read", [matching.PLANNED, matching.BITMAP, matching.TAILS])
@pytest.mark.parametrize("walk", [0, 1, 2, matching.WALK_PER_ROW])
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("shape", SHAPES)
def test_the_first_keys_are_the_plain_querys(shape, order, walk, read):
    """With no walk, or one of one or two rows per row wanted, the sorted read answers; in
    one statement or, reading the search indexes alone (BITMAP), in two; reading the starts
    of the fields and what lies further in apart (TAILS), the same."""
    leads(SHAPES[shape])
    rows = RPH.objects.order_by(*order)
    search = Search(("name", "company", "email"), "kowalski", walk=walk, read=read)
    for limit in (1, 3, 6, 30):
        assert first_keys(rows, search, limit) == plain(rows, search, limit)


@pytest.mark.parametrize("read", [matching.PLANNED, matching.BITMAP, matching.TAILS])
@pytest.mark.parametrize("walk", [0, 1, matching.WALK_PER_ROW])
def test_words_at_the_start_and_literal_wildcards(walk, read):
    leads(["Ab Cd", "Xab", "a%b", "a_b", "axb", "A\\b", "Émile", "straße", "ab ab"] * 3)
    rows = RPH.objects.order_by("name", "pk")
    for query, mode in [("ab", "start"), ("ab", "inside"), ("%", "inside"), ("a_", "start")]:
        search = Search(("name",), query, mode, walk=walk, read=read)
        keys = first_keys(rows, search, 5)
        assert keys == plain(rows, search, 5)
    search = Search(("name",), "a%b", walk=walk, read=read)
    assert len(first_keys(rows, search, 10)) == 3  # not axb, a_b
    assert len(first_keys(rows, Search(("name",), "\\", walk=walk, read=read), 10)) == 3
    # At the start of a name, further in, both, and a first character of two bytes.
    for query in ("émile", "mile", "STRASSE", "ß", "ab", "b a", "x"):
        search = Search(("name",), query, walk=walk, read=read)
        assert first_keys(rows, search, 30) == plain(rows, search, 30)


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


def _plan(cursor, sql: str, params=None, analyze: bool = False) -> dict:
    """PostgreSQL's plan of `sql`, run too with `analyze`: its top node."""
    cursor.execute(f"EXPLAIN ({'ANALYZE, ' if analyze else ''}FORMAT JSON) " + sql, params)
    (document,) = cursor.fetchone()
    return (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]


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
        plan = _plan(cursor, sql, analyze=True)
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
    assert walk(contacts, contacts.ContactFilterForm, sort="status") == matching.TEAM_WALK_PER_ROW
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
        plan = _plan(cursor, captured.captured_queries[-1]["sql"], analyze=True)
    nodes = list(_nodes(plan))
    assert _every_was_read(nodes)
    read = {(n["Node Type"], n["Index Name"]) for n in _sorted_read(nodes)}
    assert read == {
        ("Index Only Scan", "crm_contact_name_start"),
        ("Index Only Scan", "crm_contact_email_start"),
    }


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
def test_a_teams_contacts_are_read_from_the_teams_search_index(north):
    """A team's contacts past the walk (Search.bitmap) are read from crm 0025's index with the
    team in its condition (visible_to sends the team as the bigint the index compares), not
    by testing each of the team's rows in its name index; and the index scans turned off for
    that read are on again after it, inside a transaction too."""
    from crm.contacts import ContactFilterForm, contacts_for_list, search_of

    ours, theirs = AccountFactory(team=north), AccountFactory()
    with connection.cursor() as cursor:  # enough of a team's rows for an index to be worth it
        for account in (ours, theirs):
            cursor.execute(
                "INSERT INTO crm_contact (account_id, name, email, phone, status, status_reason)"
                " SELECT %s, 'Ann Lee ' || g, 'a' || g || '@x.example', '', 'active', ''"
                " FROM generate_series(1, 3000) AS g",
                [account.pk],
            )
    for n in range(5):
        ContactFactory(name=f"Zed Nora {n}", email=f"z{n}@x.example", account=ours)
    ContactFactory(name="Abe Nora", email="abe@x.example", account=theirs)
    manager = UserFactory(role="manager", team=north)
    form = ContactFilterForm({"q": "nora"}, user=manager)
    assert form.is_valid()
    rows, search = contacts_for_list(manager, form), search_of(form)
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        keys = first_keys(rows, search, 3)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('enable_indexscan'),"
                " current_setting('enable_indexonlyscan')"
            )
            assert cursor.fetchone() == ("on", "on")
    assert keys == plain(rows, search, 3)
    names = dict(Contact.objects.filter(pk__in=keys).values_list("pk", "name"))
    assert [names[key] for key in keys] == ["Zed Nora 0", "Zed Nora 1", "Zed Nora 2"]
    statements = [q["sql"] for q in captured.captured_queries]
    (read,) = [sql for sql in statements if sql.startswith("SELECT sorted")]
    # PostgreSQL's choice at a million rows (bench.crm_pages), not at a test's: the read runs
    # with index scans off, else it tests each of the team's rows in its name index.
    before = statements[statements.index(read) - 1]
    assert "set_config('enable_indexscan', 'off', true)" in before
    assert "set_config('enable_indexonlyscan', 'off', true)" in before
    scans = _plan_without_team_btrees(read)
    assert scans and set(scans) == {("contact_team_search", True)}


class _RolledBack(Exception):
    pass


def _plan_without_team_btrees(sql: str) -> list[str]:
    """The indexes the read's bitmap scans use with the team in their condition, when the
    team's B-tree indexes and everyone's trigram indexes are not there to choose instead (on
    a test's few rows PostgreSQL would read them and test each row: cheap at that size).
    Rolled back."""
    scans = []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "DROP INDEX contact_team_status_name, contact_team_name_email,"
                " crm_contact_name_trgm, crm_contact_email_trgm"
            )
            cursor.execute("ANALYZE crm_contact")
            cursor.execute(
                "SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off;"
                " SET LOCAL enable_seqscan = off"
            )
            for node in _nodes(_plan(cursor, sql)):
                if node["Node Type"] == "Bitmap Index Scan":
                    scans.append((node["Index Name"], "team_id = " in node["Index Cond"]))
            raise _RolledBack
    except _RolledBack:
        pass
    return scans


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
def test_everyones_contacts_are_read_from_the_start_and_tail_indexes():
    """An administrator's contacts past the walk (Search.read TAILS): those whose name or
    email starts with the words from the start indexes, those with the words further in from
    the tail index (crm 0025), whose expression the query's matches; each found once."""
    from crm.contacts import ContactFilterForm, contacts_for_list, search_of

    account = AccountFactory()
    for n in range(30):
        ContactFactory(name=f"Ann Lee {n}", email=f"a{n}@x.example", account=account)
    ContactFactory(name="Nora Zed", email="nora@z.example", account=account)  # both starts
    ContactFactory(name="Zoe Nora", email="z@x.example", account=account)  # further in
    ContactFactory(name="Zack Smith", email="x.nora@x.example", account=account)
    administrator = UserFactory(role="admin")
    form = ContactFilterForm({"q": "NORA"}, user=administrator)
    assert form.is_valid()
    rows, search = contacts_for_list(administrator, form), search_of(form)
    assert search.read == matching.TAILS
    with CaptureQueriesContext(connection) as captured:
        keys = first_keys(rows, dataclasses.replace(search, walk=1), 5)
    assert keys == plain(rows, search, 5)
    names = dict(Contact.objects.filter(pk__in=keys).values_list("pk", "name"))
    assert [names[key] for key in keys] == ["Nora Zed", "Zack Smith", "Zoe Nora"]
    assert len(captured.captured_queries) == 1
    # The part further in is read from the tail index: its expression is the index's. On a
    # test's few rows PostgreSQL would scan another index instead: only bitmaps are let in.
    further = Contact.objects.filter(search.parts()[-1]).values("pk")
    sql, params = further.query.get_compiler(using="default").as_sql()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off;"
            " SET LOCAL enable_indexonlyscan = off"
        )
        plan = _plan(cursor, sql, params)
        cursor.execute("RESET enable_seqscan; RESET enable_indexscan; RESET enable_indexonlyscan")
    scans = {n["Index Name"] for n in _nodes(plan) if n["Node Type"] == "Bitmap Index Scan"}
    assert scans == {"contact_tail_search"}


def _settings() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('enable_indexscan'), current_setting('enable_indexonlyscan')"
        )
        return cursor.fetchone()


def _past_the_walk(read: str, query: str = "kowalski") -> tuple[list[int], list[int], int]:
    """The first keys of a block of leads past a walk of one row per row wanted, the plain
    query's, and how many statements the read took."""
    leads(["Ann Lee"] * 20 + ["Zed Kowalski"] * 5)
    rows = RPH.objects.order_by("name", "pk")
    search = Search(("name", "email"), query, walk=1, read=read)
    with CaptureQueriesContext(connection) as captured:
        keys = first_keys(rows, search, 3)
    return keys, plain(rows, search, 3), len(captured.captured_queries)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's settings")
def test_the_settings_a_caller_made_come_back_after_the_read():
    """Inside a caller's transaction the read's settings are undone to the caller's own, not
    to the server's defaults."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_indexscan = off")
        keys, expected, statements = _past_the_walk(matching.BITMAP)
        assert keys == expected and len(keys) == 3
        assert statements >= 2, "the walk, then the read"
        assert _settings() == ("off", "on")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's settings")
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_read_leaves_no_setting_behind():
    keys, expected, _ = _past_the_walk(matching.BITMAP)
    assert keys == expected and len(keys) == 3
    assert _settings() == ("on", "on")


@pytest.mark.parametrize("read", [matching.BITMAP, matching.TAILS])
def test_words_no_trigram_index_can_look_for_are_read_as_postgresql_plans(read):
    """Two letters ("ko") have no trigram: BITMAP and TAILS would read a trigram index whole;
    the one statement of PLANNED reads them."""
    assert Search(("name",), "ko", read=read).reading == matching.PLANNED
    assert Search(("name",), "kow", read=read).reading == read
    keys, expected, statements = _past_the_walk(read, "ko")
    assert keys == expected and len(keys) == 3
    assert statements == 1
