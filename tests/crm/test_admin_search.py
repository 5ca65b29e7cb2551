"""The admin's search, bounded as the CRM's (crm.admin.VisibleRows.get_search_results): the
first 8 words of the first 200 characters, each read from an index (inside from three
letters or digits in a row, at the start for one or two, punctuation alone not searched), a
related row's field looked up in its own table first, and the results newest first (a list
sorted by name walked 675,000 contacts to a first name's block: 6 s)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm import admin as crm_admin
from mailsync import outbox
from tests.factories import AccountFactory, ContactFactory
from tests.mailsync.test_email_list import mail, mailbox_of

pytestmark = pytest.mark.django_db

CONTACTS = reverse("admin:crm_contact_changelist")


def listed(client, q: str) -> list[str]:
    response = client.get(CONTACTS, {"q": q})
    assert response.status_code == 200
    return [contact.name for contact in response.context["cl"].result_list]


@pytest.fixture
def signed_in(client, administrator):
    client.force_login(administrator)
    acme = AccountFactory(name="Acme Industries")
    globex = AccountFactory(name="Globex")
    ContactFactory(name="Ann Zed", email="ann@globex.example", account=globex)
    ContactFactory(name="Bo Lopez", email="bo@acme.example", account=acme)
    ContactFactory(name="Ann Able", email="a.able@x.example", account=acme)  # the newest
    return client


def test_words_are_found_in_a_field_or_the_accounts_name_newest_first(signed_in):
    assert listed(signed_in, "ann") == ["Ann Able", "Ann Zed"]  # newest first
    assert listed(signed_in, "industries") == ["Ann Able", "Bo Lopez"]  # the account's name
    assert listed(signed_in, "ann acme") == ["Ann Able"]  # every word, each in any field
    assert listed(signed_in, '"ann zed"') == ["Ann Zed"]  # a phrase in quotes
    assert listed(signed_in, "GLOBEX.EX") == ["Ann Zed"]
    assert listed(signed_in, "lo") == []  # one or two letters: at the start of a field
    assert listed(signed_in, "bo") == ["Bo Lopez"]
    assert listed(signed_in, "ac") == ["Ann Able", "Bo Lopez"]  # of the account's name too


def test_a_column_clicked_sorts_a_search_as_asked(signed_in):
    response = signed_in.get(CONTACTS, {"q": "ann", "o": "1"})  # by name

    assert [contact.name for contact in response.context["cl"].result_list] == [
        "Ann Able",
        "Ann Zed",
    ]
    response = signed_in.get(CONTACTS, {"q": "ann", "o": "-1"})
    assert [contact.name for contact in response.context["cl"].result_list] == [
        "Ann Zed",
        "Ann Able",
    ]


def test_the_accounts_are_looked_up_first_or_joined_past_a_thousand(signed_in, monkeypatch):
    with CaptureQueriesContext(connection) as looked_up:
        assert listed(signed_in, "industries") == ["Ann Able", "Bo Lopez"]
    monkeypatch.setattr(crm_admin, "RELATED_KEYS", 0)  # more than that: joined, as Django does
    with CaptureQueriesContext(connection) as joined:
        assert listed(signed_in, "industries") == ["Ann Able", "Bo Lopez"]

    def tested_across_the_join(captured) -> bool:  # in the count, which shows no account
        return any(
            q["sql"].startswith("SELECT COUNT(*)")
            and 'FROM "crm_contact"' in q["sql"]
            and '"crm_account"."name"' in q["sql"]
            for q in captured.captured_queries
        )

    assert not tested_across_the_join(looked_up) and tested_across_the_join(joined)
    assert any('"crm_contact"."account_id" IN (' in q["sql"] for q in looked_up.captured_queries)


def test_the_first_8_words_of_200_characters_are_searched_and_the_page_says_so(signed_in):
    response = signed_in.get(CONTACTS, {"q": "ann " * 8 + "nobody"})  # a 9th word
    many = signed_in.get(CONTACTS, {"q": " ".join(["ann"] * 2000)})  # 8,000 characters

    for page in (response, many):
        assert [c.name for c in page.context["cl"].result_list] == ["Ann Able", "Ann Zed"]
        assert "Searched the first 8 words of the first 200 characters." in page.content.decode()
    assert "Searched the first" not in signed_in.get(CONTACTS, {"q": "ann"}).content.decode()


@pytest.mark.parametrize("q", ["%", "_ %", "\\", "%_" * 100])
def test_punctuation_alone_is_not_searched_and_the_page_says_so(signed_in, q):
    response = signed_in.get(CONTACTS, {"q": q})

    assert len(response.context["cl"].result_list) == 3
    assert "Not searched: type letters or digits" in response.content.decode()


def test_long_words_are_found_whole(signed_in):
    ContactFactory(name="Dario Richard", email="dario.richard248589@meridian75.example")

    assert listed(signed_in, "DARIO.RICHARD248589@MERIDIAN75.EXAMPLE") == ["Dario Richard"]
    assert listed(signed_in, "dario.richard248589@meridian75.exampl" + "x") == []


def test_the_backlog_is_searched_by_its_words_or_a_message_id(client, administrator, rep):
    """The backlog's subject, addresses and text had no index for the admin's search (2.3 s
    a word at a million emails): the email list's search, or an email's Message-ID."""
    box = mailbox_of(rep, "rita@vigil.example")
    invoice = mail(box, "Spring campaign", body="The invoice for March", sender="bo@acme.example")
    mail(box, "Unrelated", body="Nothing here")
    client.force_login(administrator)
    url = reverse("admin:mailsync_backlogemail_changelist")

    def found(q: str) -> list[str]:
        return [email.subject for email in client.get(url, {"q": q}).context["cl"].result_list]

    assert found("invoice") == found("SPRING") == found("bo@acme.example") == ["Spring campaign"]
    assert (
        found(f" {invoice.message_id} ")
        == found(invoice.message_id.strip("<>"))
        == ["Spring campaign"]
    )
    assert found("march nothing") == []


def test_a_field_that_holds_no_text_is_searched_as_django_searches_it(client, administrator):
    """The outbox's recipients are JSON: a long word there is looked for as Django does (the
    index piece's test appends text to the column, which JSON refuses)."""
    address = "dario.richard248589@meridian75.example"
    outbox.queue(
        [outbox.Email(key="k-1", to=[address], subject="Hello", text_body="Hi", source="t")],
        timezone.now(),
    )
    client.force_login(administrator)
    url = reverse("admin:mailsync_outboxmessage_changelist")

    for q in (address, "dario.richard248589", "ri"):
        response = client.get(url, {"q": q})
        assert response.status_code == 200
        assert [m.subject for m in response.context["cl"].result_list] == ["Hello"]


def test_a_search_shows_no_sort_arrow_unless_a_column_is_clicked(signed_in):
    searched = signed_in.get(CONTACTS, {"q": "ann"}).context["cl"]
    clicked = signed_in.get(CONTACTS, {"q": "ann", "o": "1"}).context["cl"]

    assert searched.get_ordering_field_columns() == {}
    assert clicked.get_ordering_field_columns() == {1: "asc"}
    assert signed_in.get(CONTACTS).context["cl"].get_ordering_field_columns() == {1: "asc"}


def test_an_autocomplete_says_nothing_on_the_next_page_and_lists_newest_first(signed_in):
    url = reverse("admin:autocomplete")
    params = {"app_label": "crm", "model_name": "contact", "field_name": "account"}

    AccountFactory(name="Alpha Ltd")
    AccountFactory(name="Zeta Ltd")  # the newest

    refused = signed_in.get(url, {**params, "term": "-"})
    found = signed_in.get(url, {**params, "term": "ltd"})

    assert refused.status_code == 200
    assert [r["text"] for r in found.json()["results"]] == ["Zeta Ltd", "Alpha Ltd"]
    assert [r["text"] for r in signed_in.get(url, {**params, "term": "ac"}).json()["results"]] == [
        "Acme Industries"
    ]
    assert "Not searched" not in signed_in.get(CONTACTS).content.decode()
