"""My email: every email of the mailboxes I may see, newest first, searched by subject,
address and text, filtered (received, sent, sent from the CRM, not linked to a record, one
thread), a page at a time from a cursor; the same few queries whatever the backlog holds."""

import itertools
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import RPH, Contact
from mailsync import backlog, outbox
from mailsync.models import BacklogEmail, Mailbox
from tests.clients import HTMX, logged_in
from tests.factories import AccountFactory, TeamFactory, UserFactory
from tests.mailsync.factories import ContactFactory

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
_uids = itertools.count(1)


def mailbox_of(owner, address: str) -> Mailbox:
    return Mailbox.objects.create(
        owner=owner,
        provider=Mailbox.Provider.IMAP,
        auth=Mailbox.Auth.PASSWORD,
        address=address,
        username=address,
        imap_host="imap.client.example",
        status=Mailbox.Status.ACTIVE,
        created_at=NOW,
    )


def mail(
    mailbox: Mailbox,
    subject: str,
    *,
    body: str = "Hello",
    sender: str = "ana@client.example",
    to: str = "",
    at: datetime | None = NOW,
    folder: str = "inbox",
    headers: dict[str, str] | None = None,
    stored_at: datetime = NOW,
) -> BacklogEmail:
    """An email as the sync stores it in `mailbox`'s folder (`at` None: no Date header)."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to or mailbox.address, subject
    if at is not None:
        msg["Date"] = format_datetime(at)
    msg["Message-ID"] = make_msgid(domain="client.example")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    uid = next(_uids)
    backlog.store(mailbox, folder, 1, [backlog.Fetched(uid, msg.as_bytes())], stored_at)
    return BacklogEmail.objects.get(copies__mailbox=mailbox, copies__uid=uid)


def listed(user, query: str = "") -> list[str]:
    """The subjects the list shows `user`, in order."""
    page = logged_in(user).get(f"/mail/{query}")
    assert page.status_code == 200
    return [email.subject for email in page.context["page"].emails]


@pytest.fixture
def box(rep):
    return mailbox_of(rep, "rita@vigil.example")


def test_the_list_shows_the_mail_of_the_mailboxes_i_may_see_newest_first(rep, manager, box):
    mail(box, "Older", at=NOW - timedelta(days=2))
    mail(box, "Newest", at=NOW)
    mail(box, "Middle", at=NOW - timedelta(days=1))
    south = UserFactory(username="sol_south", role="rep", team=TeamFactory(name="South"))
    mail(mailbox_of(south, "sol@vigil.example"), "South's own")

    assert listed(rep) == ["Newest", "Middle", "Older"]
    assert listed(manager) == ["Newest", "Middle", "Older"]  # the team's mailboxes
    assert listed(south) == ["South's own"]
    page = logged_in(rep).get("/mail/").content.decode()
    assert '<a href="/mail/">Email</a>' in page  # in the navigation
    assert "3 emails" in page


def test_an_undated_email_sorts_at_the_time_it_was_stored(rep, box):
    mail(box, "Dated yesterday", at=NOW - timedelta(days=1))
    mail(box, "No date header", at=None, stored_at=NOW - timedelta(hours=1))
    mail(box, "Dated now", at=NOW)

    assert listed(rep) == ["Dated now", "No date header", "Dated yesterday"]
    assert "undated" in logged_in(rep).get("/mail/").content.decode()


def test_search_finds_words_of_the_subject_addresses_and_text(rep, box):
    mail(box, "Spring campaign", body="The invoice for March is attached.")
    mail(box, "Proof", sender="Bruno <bruno@printer.example>", body="Proof ready")
    mail(box, "Élan", body="Café crème, s'il vous plaît")
    mail(box, "Unrelated", sender="zed@other.example", body="Nothing here")

    assert listed(rep, "?q=invoice") == ["Spring campaign"]  # a word of the text
    assert listed(rep, "?q=SPRING") == ["Spring campaign"]  # of the subject, any case
    assert listed(rep, "?q=bruno@printer.example") == ["Proof"]  # an address
    assert listed(rep, "?q=brun") == ["Proof"]  # the start of a word or address
    assert listed(rep, "?q=café") == ["Élan"]
    assert listed(rep, "?q=invoice+march") == ["Spring campaign"]  # every word
    assert listed(rep, "?q=invoice+proof") == []
    assert set(listed(rep, "?q=ana@client.example")) == {"Spring campaign", "Élan"}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's full-text search")
def test_a_word_of_one_or_two_characters_is_looked_for_whole(rep, box):
    """The search index finds the words a prefix starts by reading every email that holds
    one ("w x": 2.4 s at a million emails): one or two characters are a word of their own."""
    mail(box, "Words", body="wonderful xylophone w1 a")
    mail(box, "Address", sender="wo@client.example", body="Hello")

    assert listed(rep, "?q=wo") == [] and listed(rep, "?q=won") == ["Words"]
    assert listed(rep, "?q=w1+a") == ["Words"]  # whole words of one or two characters
    assert listed(rep, "?q=w_x") == listed(rep, "?q=w-x") == []  # "w" and "x", whole
    assert listed(rep, "?q=won_xyl") == ["Words"]
    assert listed(rep, "?q=wo@client.example") == ["Address"]


@pytest.mark.parametrize(
    "search",
    ["'", "a:*|b", "!!!", "x' | '", "\\", "(", "___", "'; DROP TABLE x; --", "a" * 5000],
)
def test_any_search_text_is_only_words(rep, box, search):
    mail(box, "Kept", body="words")

    assert logged_in(rep).get("/mail/", {"q": search}).status_code == 200
    assert all(re.fullmatch(r"[\w@.+-]+", w) for w in backlog.search_words(search))
    assert len(backlog.search_words(" ".join(["word"] * 50))) == backlog.SEARCH_WORDS


def test_filters_received_sent_from_the_crm_and_not_linked(rep, box):
    ContactFactory(account__team=rep.team, email="Ana@Client.Example")
    mail(box, "From a contact", sender="ana@client.example")
    mail(box, "From a stranger", sender="nobody@elsewhere.example")
    mail(box, "I replied", sender=box.address, to="ana@client.example", folder="sent")
    outbox.queue(
        [
            outbox.Email(
                key="crm-1",
                to=["ana@client.example"],
                subject="From the CRM",
                text_body="Hi",
                source="test",
            )
        ],
        NOW,
    )
    # The CRM's own mail, in my Sent folder too.
    sent = outbox.deliver(outbox.claim(NOW, 10), NOW)
    assert sent["sent"] == 1
    crm = BacklogEmail.objects.get(sent_from_crm=True)
    crm.copies.create(mailbox=box, folder="sent", uidvalidity=1, uid=next(_uids))

    assert set(listed(rep, "?direction=inbound")) == {"From a contact", "From a stranger"}
    assert set(listed(rep, "?direction=outbound")) == {"I replied", "From the CRM"}
    assert listed(rep, "?crm=1") == ["From the CRM"]
    assert listed(rep, "?unlinked=1") == ["From a stranger"]
    assert listed(rep, "?unlinked=1&direction=outbound") == []


def test_a_lead_of_another_team_does_not_link_my_email(rep, box):
    south = UserFactory(username="sol_south", role="rep", team=TeamFactory(name="South"))
    RPH.objects.create(
        name="Theirs", email="lead@client.example", owner=south, status_changed_at=NOW
    )
    mail(box, "From their lead", sender="lead@client.example")

    assert listed(rep, "?unlinked=1") == ["From their lead"]


def test_a_thread_lists_its_emails(rep, box):
    first = mail(box, "Quote", at=NOW - timedelta(hours=2))
    mail(
        box,
        "Re: Quote",
        sender=box.address,
        to="ana@client.example",
        folder="sent",
        at=NOW - timedelta(hours=1),
        headers={"In-Reply-To": f"<{first.message_key}>", "References": f"<{first.message_key}>"},
    )
    mail(box, "Something else", at=NOW)

    page = logged_in(rep).get("/mail/").content.decode()
    assert page.count('class="thread"') == 2  # the two emails of the thread link to it

    assert listed(rep, f"?thread={first.thread_key}") == ["Re: Quote", "Quote"]


def test_pages_go_older_and_newer_from_a_cursor(rep, box, monkeypatch):
    monkeypatch.setattr(backlog, "PAGE_SIZE", 2)
    for n in range(3):  # three share one date: the id breaks the tie
        mail(box, f"Same time {n}", at=NOW)
    mail(box, "Undated", at=None, stored_at=NOW - timedelta(days=1))
    mail(box, "Oldest", at=NOW - timedelta(days=2))
    client = logged_in(rep)

    first = client.get("/mail/").context["page"]
    second = client.get("/mail/", {"older": str(first.older)}).context["page"]
    third = client.get("/mail/", {"older": str(second.older)}).context["page"]
    back = client.get("/mail/", {"newer": str(third.newer)}).context["page"]

    subjects = [[e.subject for e in p.emails] for p in (first, second, third, back)]
    assert subjects == [
        ["Same time 2", "Same time 1"],
        ["Same time 0", "Undated"],
        ["Oldest"],
        ["Same time 0", "Undated"],
    ]
    assert (first.newer, third.older) == (None, None)
    assert back.newer is not None  # and newer still
    html = client.get("/mail/", {"older": str(first.older), "q": "same"}).content.decode()
    assert f"q=same&amp;newer={backlog.Cursor.of(second.emails[0])}" in html


def test_a_bad_parameter_gets_a_one_line_error_and_the_rest_applies(rep, box):
    mail(box, "Received")
    mail(box, "Sent", sender=box.address, to="ana@client.example", folder="sent")

    response = logged_in(rep).get("/mail/?older=yesterday&direction=inbound")

    assert "That page link is not valid: showing the newest." in response.content.decode()
    assert [e.subject for e in response.context["page"].emails] == ["Received"]
    assert logged_in(rep).get("/mail/?direction=sideways").status_code == 200
    for cursor in ("-99999999999999999_1", "1_9999999999999999999", "ü_1"):
        assert logged_in(rep).get("/mail/", {"newer": cursor}).status_code == 200


def test_the_count_is_capped(rep, box, monkeypatch):
    monkeypatch.setattr(backlog, "COUNT_CAP", 2)
    for n in range(3):
        mail(box, f"Email {n}")

    assert "More than 2 emails" in logged_in(rep).get("/mail/").content.decode()
    assert "1 email, newest first" in logged_in(rep).get("/mail/?q=email+1").content.decode()


def test_htmx_gets_the_rows_alone(rep, box):
    mail(box, "Spring campaign")

    response = logged_in(rep).get("/mail/?q=spring", headers=HTMX)

    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card" id="email-list">')
    assert "Spring campaign" in html and "<nav>" not in html
    assert "HX-Request" in response["Vary"]


QUERIES = ["", "?q=hello", "?direction=inbound&crm=1&unlinked=1", "?thread=t&q=a+b"]


@pytest.mark.parametrize("query", QUERIES)
def test_a_page_costs_the_same_queries_at_one_and_many_emails(
    rep, manager, administrator, box, query
):
    ContactFactory(account__team=rep.team, email="ana@client.example")
    mail(box, "First", body="hello")
    users = (rep, manager, administrator)

    def costs() -> list[int]:
        counted = []
        for user in users:
            client = logged_in(user)
            with CaptureQueriesContext(connection) as queries:
                assert client.get(f"/mail/{query}").status_code == 200
            counted.append(len(queries))
        return counted

    one = costs()
    for n in range(30):
        mail(box, f"Email {n}", body="hello", sender=f"x{n}@client.example")
    many = costs()

    # Session, user and the blocking gate; for each part of visible_parts (two, and one for an
    # administrator) its count (reading the ids) and, unless it found nothing, a page.
    assert one == many
    assert one[0] <= 7 and one[1] <= 7 and one[2] <= 5


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's query plans")
def test_the_list_reads_its_indexes(administrator, box):
    mail(box, "Spring campaign", body="invoice")
    (emails,) = (p.emails for p in backlog.email_list(administrator, backlog.EmailFilters()))
    (searched,) = (
        p.emails for p in backlog.email_list(administrator, backlog.EmailFilters(search="invoice"))
    )

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        newest = emails[:51].explain()
        cursor.execute("SET LOCAL enable_sort = on")
        search = searched[:51].explain()

    assert "backlogemail_newest" in newest
    assert "backlogemail_search" in search


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's query plans")
@pytest.mark.parametrize("username", ["rep", "manager", "administrator"])
def test_not_linked_looks_each_address_up(request, username, box):
    """With many contacts and leads, an email's addresses are looked up among theirs (an
    index read each), not every visible contact's and lead's address read into a hash for
    each page (half a second at a million contacts)."""
    user = request.getfixturevalue(username)
    account = AccountFactory(team=user.team)
    Contact.objects.bulk_create(
        Contact(account=account, team=user.team, name=f"C{n}", email=f"C{n}@Client.example")
        for n in range(3000)
    )
    RPH.objects.bulk_create(
        RPH(
            owner=user, team=user.team, name=f"L{n}", email=f"l{n}@x.example", status_changed_at=NOW
        )
        for n in range(3000)
    )
    mail(box, "From a stranger", sender="stranger@client.example")
    mail(box, "From a contact", sender="c7@client.example")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_contact, crm_rph")
    (part, *_) = backlog.email_list(user, backlog.EmailFilters(unlinked=True))

    plan = part.emails[:51].explain()

    assert "contact_email_listed" in plan
    assert "rph_email_listed" in plan
    assert listed(user, "?unlinked=1") == ["From a stranger"]


def test_the_parts_of_the_list_are_what_visible_to_matches(rep, manager, administrator, box):
    theirs = mailbox_of(UserFactory(username="tess", team=TeamFactory(name="West")), "t@x.example")
    mine = {mail(box, f"Mine {n}").pk for n in range(2)}
    mail(theirs, "Theirs")
    # The CRM's mail about a lead of mine, in no mailbox: mine through the outbox alone.
    lead = RPH.objects.create(name="L", email="l@client.example", owner=rep, status_changed_at=NOW)
    sent = outbox.Email(
        key="about", to=[lead.email], subject="S", text_body="T", source="t", about=lead
    )
    outbox.queue([sent], NOW)
    outbox.deliver(outbox.claim(NOW, 10), NOW)
    mine.add(BacklogEmail.objects.get(outbox__key="about").pk)

    for user in (rep, manager, administrator):
        parts = backlog.email_list(user, backlog.EmailFilters())
        listed_pks = [pk for part in parts for pk in part.emails.values_list("pk", flat=True)]
        visible = BacklogEmail.objects.filter(backlog.visible_to(user))
        assert sorted(listed_pks) == sorted(visible.values_list("pk", flat=True))
    assert (
        set(BacklogEmail.objects.filter(backlog.visible_to(rep)).values_list("pk", flat=True))
        == mine
    )
    assert set(listed(rep)) == {"Mine 0", "Mine 1", "S"}
