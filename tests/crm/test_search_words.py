"""Words a search's indexes can read, whatever is typed. Long words (crm.matching.contains):
a trigram index is read for a piece of them (INDEXED characters from their first three
letters or digits in a row) and the rows it finds are tested on the whole words, so that
PostgreSQL never walks a whole list for words it costs by their trigrams (an administrator's
26 letters nobody has walked a million leads, 1.4 s); what a search finds is what icontains
of the whole words finds. Words without three letters or digits in a row: one or two are
looked for at the start of a field, punctuation alone is refused in one line (inside, every
row would be read and tested)."""

import json

import pytest
from django.db import connection, transaction
from django.db.models import Q

from crm import matching
from crm.matching import INDEXED, Search, contains, first_keys, indexed
from crm.models import RPH
from mailsync.backlog import find_records
from tests.clients import logged_in
from tests.factories import AccountFactory, ContactFactory, LeadFactory, UserFactory

pytestmark = pytest.mark.django_db

ADDRESS = "dario.richard248589@meridian75.example"
HOSTILE = "eszycidpyopumzgdpamntyyawoixzhsdkaaauramvgnxaqhyoprhlhvhyo" * 4  # 232: cut to 200
NAMES = [
    ADDRESS,
    ADDRESS.upper(),
    ADDRESS[:INDEXED] + "x" + ADDRESS[INDEXED + 1 :],  # the piece alone, the rest differs
    "dario.richard248589@meridian75.exampl",  # all but the last character
    "Zoë Ab%cdefghijklmnop_qrstu",
    "Zoë AbXcdefghijklmnopYqrstu",  # what %, _ would match as wildcards
    "Émile-Zoë Wojciechowska-Kowalczyk",
    "--- Kowalski-Nowak-Lewandowski ---",
    "a\\b%c_defghijklmnopqrstuvwxyz",
    "a\\bXcYdefghijklmnopqrstuvwxyz",
]
WORDS = [
    ADDRESS,
    ADDRESS.title(),
    "ab%cdefghijklmnop_qrstu",
    "émile-zoë wojciechowska",
    "--- kowalski-nowak-lewandowski",
    HOSTILE[:200],
    ADDRESS[:INDEXED],  # no longer than the piece: read whole
    "A\\B%C_DEFGHIJKLMNOPQRS",  # a backslash and wildcards in the piece, literal
]


def icontains(fields, words: str) -> Q:
    """What the search must find: Django's icontains of the whole words, any field."""
    found = Q()
    for field in fields:
        found |= Q(**{f"{field}__icontains": words})
    return found


def test_the_piece_starts_at_the_first_three_letters_or_digits():
    assert indexed("short words") == "short words"
    assert indexed("--- kowalski-nowak-lewandowski") == "kowalski-nowak-l"
    assert indexed("a b c " + "x" * 30) == "x" * INDEXED
    assert len(indexed(HOSTILE[:200])) == INDEXED


@pytest.mark.parametrize("words", WORDS)
def test_contains_finds_what_icontains_of_the_whole_words_finds(words):
    for n, name in enumerate(NAMES):
        LeadFactory(name=name, company="", email=f"l{n}@x.example")

    found = set(RPH.objects.filter(contains("name", words)).values_list("name", flat=True))

    expected = set(RPH.objects.filter(name__icontains=words).values_list("name", flat=True))
    assert found == expected
    if words in (ADDRESS, ADDRESS.title()):
        assert found == {ADDRESS, ADDRESS.upper()}  # not the piece alone, nor a shorter one


@pytest.mark.parametrize("read", [matching.PLANNED, matching.BITMAP, matching.TAILS])
@pytest.mark.parametrize("walk", [0, 1, matching.WALK_PER_ROW])
@pytest.mark.parametrize("words", WORDS)
def test_the_first_keys_of_long_words_are_the_plain_querys(words, walk, read):
    for n, name in enumerate(NAMES * 3):
        LeadFactory(name=name, company=name[::-1], email=f"l{n}@x.example")
    fields = ("name", "company", "email")
    rows = RPH.objects.order_by("name", "pk")

    keys = first_keys(rows, Search(fields, words, walk=walk, read=read), 30)

    assert keys == list(rows.filter(icontains(fields, words)).values_list("pk", flat=True)[:30])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
def test_the_trigram_indexes_are_read_for_the_piece_alone():
    """The bitmap scans of the three trigram indexes look for the piece; the whole words are
    tested on the rows they find. With the whole words in the index condition, PostgreSQL
    costs 200 trigrams a field and walks the list instead."""
    for n, name in enumerate(NAMES):
        LeadFactory(name=name, company="", email=f"l{n}@x.example")
    words = HOSTILE[:200]
    search = Search(("name", "company", "email"), words)
    query = RPH.objects.filter(search.q()).order_by("-last_activity_at", "-pk")[:11]
    sql, params = query.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off")
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        (document,) = cursor.fetchone()
    plan = json.loads(document) if isinstance(document, str) else document
    scans = [node for node in _nodes(plan[0]["Plan"]) if node["Node Type"] == "Bitmap Index Scan"]

    assert {node["Index Name"] for node in scans} == {
        "rph_name_trgm",
        "rph_company_trgm",
        "rph_email_trgm",
    }
    for node in scans:
        assert f"'%{indexed(words).upper()}%'" in node["Index Cond"]
        assert words.upper() not in node["Index Cond"]


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def test_the_search_box_finds_a_lead_by_a_whole_address_and_nothing_for_200_letters():
    administrator = UserFactory(is_superuser=True, is_staff=True)
    LeadFactory(name="Dario Richard", company="Meridian", email=ADDRESS)
    LeadFactory(name="Dario Richardson", company="Meridian", email=NAMES[2])
    client = logged_in(administrator)

    found = client.get("/search/", {"q": ADDRESS}).context["found"]
    nothing = client.get("/search/", {"q": HOSTILE[:200]}).context["found"]

    leads = {group.kind.key: group for group in found}["leads"]
    assert [str(hit.record) for hit in leads.hits] == ["Dario Richard"]
    assert all(not group.hits for group in nothing)


def test_the_record_picker_of_an_email_finds_by_a_whole_address(rep):
    """mailsync.backlog.find_records: what the email page offers to link to."""
    account = AccountFactory(team=rep.team, account_manager=rep)
    ContactFactory(name="Dario Richard", email=ADDRESS, account=account)
    ContactFactory(name="Dario Richardson", email=NAMES[2], account=account)

    assert [str(found.record) for found in find_records(rep, ADDRESS.upper())] == ["Dario Richard"]
    assert find_records(rep, HOSTILE[:100]) == []
    assert [str(found.record) for found in find_records(rep, "da")] == [
        "Dario Richard",
        "Dario Richardson",
    ]
    assert find_records(rep, "ri") == [] and find_records(rep, "%_") == []  # not at the start


LISTS = {
    "leads": lambda name, rep: LeadFactory(name=name, owner=rep),
    "contacts": lambda name, rep: ContactFactory(name=name, account=_account(rep)),
    "accounts": lambda name, rep: AccountFactory(name=name, team=rep.team, account_manager=rep),
}


def _account(rep):
    return AccountFactory(name="Acme", team=rep.team, account_manager=rep)


def _names(response) -> list[str]:
    return sorted(row.name for row in response.context["page"].rows)


@pytest.mark.parametrize("url", LISTS)
def test_a_lists_one_or_two_letters_are_looked_for_at_the_start(rep, url):
    for name in ("Ko Lee", "Ann Kowalski"):
        LISTS[url](name, rep)
    client = logged_in(rep)

    assert "Ko Lee" in _names(client.get(f"/{url}/", {"q": "ko"}))
    assert "Ann Kowalski" not in _names(client.get(f"/{url}/", {"q": "ko"}))
    assert "Ann Kowalski" in _names(client.get(f"/{url}/", {"q": "kow"}))  # inside from three


@pytest.mark.parametrize("q", ["%", "_", "\\%_ -.", "%_" * 100])
@pytest.mark.parametrize("url", LISTS)
def test_a_lists_punctuation_alone_is_refused_in_one_line(rep, url, q):
    LISTS[url]("Ann Kowalski", rep)

    response = logged_in(rep).get(f"/{url}/", {"q": q})

    assert "Ann Kowalski" in _names(response)  # the list, as without the search
    assert (
        "Ignored: Search: type letters or digits; punctuation alone matches everything."
        in response.content.decode()
    )
