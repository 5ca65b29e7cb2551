"""The email list of a rep or a manager is read from their mailboxes' copies, newest first:
each copy keeps its email's place in the list (MailboxCopy.sort_at: its date, or when it was
stored) and its direction and origin, equal to the email's after every write; the pages, the
cursors and the count are what the backlog's own order gives; a page costs the same queries
for one mailbox or a team's."""

import zlib
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from django.db import connection
from django.db.models.functions import Coalesce
from django.test.utils import CaptureQueriesContext

from mailsync import backlog, outbox
from mailsync.models import BacklogEmail, Mailbox, MailboxCopy
from tests.clients import logged_in
from tests.factories import TeamFactory, UserFactory
from tests.mailsync.test_email_list import NOW, _uids, listed, mail, mailbox_of


def in_step() -> bool:
    """Whether every copy's sort_at, direction and sent_from_crm are its email's."""
    rows = MailboxCopy.objects.annotate(
        email_at=Coalesce("email__date", "email__created_at")
    ).values_list(
        "sort_at",
        "email_at",
        "direction",
        "email__direction",
        "sent_from_crm",
        "email__sent_from_crm",
    )
    assert rows.exists()
    return all(row[0::2] == row[1::2] for row in rows)


def raw_message(subject: str, *, at=NOW, sender="ana@client.example", to="rita@vigil.example"):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    if at is not None:
        msg["Date"] = format_datetime(at)
    msg["Message-ID"] = make_msgid(domain="client.example")
    msg.set_content("Hello")
    return msg.as_bytes()


def store(mailbox, raw: bytes, *, folder="inbox", stored_at=NOW) -> None:
    backlog.store(mailbox, folder, 1, [backlog.Fetched(next(_uids), raw)], stored_at)


def test_a_copy_keeps_its_emails_place_whichever_sync_stores_it(rep):
    box = mailbox_of(rep, "rita@vigil.example")
    mate = mailbox_of(UserFactory(username="tom", role="rep", team=rep.team), "tom@vigil.example")
    mail(box, "Dated", at=NOW - timedelta(days=1))
    undated = raw_message("Undated", at=None)
    store(box, undated, stored_at=NOW - timedelta(hours=1))
    # The same message found later in a colleague's Sent folder: one email, stored an hour ago
    # and received (as first stored), whatever this sync would have said of it.
    store(mate, undated, folder="sent", stored_at=NOW)
    store(box, undated, stored_at=NOW + timedelta(hours=1))  # a re-run changes nothing

    email = BacklogEmail.objects.get(subject="Undated")
    assert set(email.copies.values_list("sort_at", "direction")) == {
        (NOW - timedelta(hours=1), "inbound")
    }
    assert email.copies.count() == 2
    assert in_step()


def test_the_crms_own_mail_and_a_copy_made_by_hand_keep_it_too(rep):
    box = mailbox_of(rep, "rita@vigil.example")
    sent = outbox.Email(key="k", to=["ana@client.example"], subject="S", text_body="T", source="t")
    outbox.queue([sent], NOW)
    outbox.deliver(outbox.claim(NOW, 10), NOW)
    crm = BacklogEmail.objects.get(sent_from_crm=True)
    assert not crm.copies.exists()  # the CRM's mail sits in no mailbox until a sync finds it

    crm.copies.create(mailbox=box, folder="sent", uidvalidity=1, uid=next(_uids))

    copy = crm.copies.get()
    assert (copy.sort_at, copy.direction, copy.sent_from_crm) == (crm.date, "outbound", True)
    assert in_step()


def test_reading_a_kept_message_again_moves_its_copies_with_its_date(rep):
    box = mailbox_of(rep, "rita@vigil.example")
    raw = raw_message("Dated at last", at=NOW - timedelta(days=3))
    # As an earlier parser stored it: no date read, so listed at the time it was stored.
    email = BacklogEmail.objects.create(
        content_key="content:old",
        message_key="old@client.example",
        thread_key="old@client.example",
        subject="Dated at last",
        raw=zlib.compress(raw),
        raw_compressed=True,
        raw_size=len(raw),
        parse_warnings=["no Date header"],
        direction=BacklogEmail.Direction.INBOUND,
        created_at=NOW,
    )
    MailboxCopy.objects.create(email=email, mailbox=box, folder="inbox", uidvalidity=1, uid=1)
    assert email.copies.get().sort_at == NOW

    assert backlog.reparse().changed == 1

    assert email.copies.get().sort_at == NOW - timedelta(days=3)
    assert in_step()


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_every_copy_its_emails_place():
    from django.db.migrations.executor import MigrationExecutor

    before = [("mailsync", "0009_email_links_and_search")]
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Mailbox = old.get_model("mailsync", "Mailbox")
    Email, Copy = (
        old.get_model("mailsync", "BacklogEmail"),
        old.get_model("mailsync", "MailboxCopy"),
    )
    owner = UserFactory(team=TeamFactory(name="North"))
    box = Mailbox.objects.create(
        owner_id=owner.pk,
        provider="imap",
        auth="password",
        address="o@vigil.example",
        username="o",
        imap_host="h",
        created_at=NOW,
    )
    dated, undated, crm = (
        Email.objects.create(
            content_key=f"content:{n}",
            message_key=f"{n}@client.example",
            thread_key=f"{n}@client.example",
            date=date,
            direction=direction,
            sent_from_crm=direction == "outbound",
            created_at=NOW - timedelta(days=n),
        )
        for n, date, direction in (
            (1, NOW - timedelta(days=9), "inbound"),
            (2, None, "inbound"),
            (3, NOW, "outbound"),
        )
    )
    for uid, email in enumerate((dated, undated, crm, dated)):
        folder = "sent" if uid == 3 else "inbox"
        Copy.objects.create(email=email, mailbox=box, folder=folder, uidvalidity=1, uid=uid)

    MigrationExecutor(connection).migrate(latest)

    assert MailboxCopy.objects.count() == 4
    assert in_step()
    assert set(MailboxCopy.objects.values_list("sort_at", flat=True)) == {
        NOW - timedelta(days=9),
        NOW - timedelta(days=2),
        NOW,
    }


@pytest.fixture
def mail_of_a_team(rep, manager):
    """Mail of the North team (rep's two mailboxes and a colleague's) and of South: dated,
    undated and at the same time; some in an inbox and a Sent folder both, some in two
    mailboxes; received and sent."""
    box, second = mailbox_of(rep, "rita@vigil.example"), mailbox_of(rep, "rita@home.example")
    mate = mailbox_of(UserFactory(username="tom", role="rep", team=rep.team), "tom@vigil.example")
    south = mailbox_of(
        UserFactory(username="sol", role="rep", team=TeamFactory(name="South")), "sol@x.example"
    )
    places = [
        [(box, "inbox")],
        [(box, "inbox"), (box, "sent")],
        [(second, "inbox")],
        [(box, "inbox"), (mate, "inbox")],
        [(mate, "sent")],
        [(south, "inbox")],
        [(south, "inbox"), (box, "inbox")],
    ]
    for n in range(28):
        at = None if n % 5 == 0 else NOW - timedelta(hours=n % 4)  # ties on purpose
        sender = "ana@client.example" if n % 3 else "rita@vigil.example"
        raw = raw_message(f"Email {n}", at=at, sender=sender)
        for mailbox, folder in places[n % len(places)]:
            store(mailbox, raw, folder=folder, stored_at=NOW - timedelta(minutes=n))
    assert in_step()


def newest_first(user, filters: backlog.EmailFilters) -> list[int]:
    """What the list shows, as the backlog's own order has it."""
    emails = BacklogEmail.objects.filter(backlog.visible_to(user))
    if filters.direction:
        emails = emails.filter(direction=filters.direction)
    emails = backlog.searched(emails, backlog.search_words(filters.search))
    ordered = emails.annotate(at=backlog.SORT_AT).order_by("-at", "-pk")
    return list(ordered.values_list("pk", flat=True))


FILTERS = [
    backlog.EmailFilters(),
    backlog.EmailFilters(direction="inbound"),
    backlog.EmailFilters(direction="outbound"),
    backlog.EmailFilters(search="email"),
]


@pytest.mark.parametrize("cap", [1000, 2], ids=["read from their ids", "read in order"])
@pytest.mark.parametrize("filters", FILTERS)
@pytest.mark.parametrize("who", ["rep", "manager", "administrator"])
def test_pages_and_cursors_read_through_copies_are_the_backlogs_order(
    request, mail_of_a_team, who, filters, cap, monkeypatch
):
    """The same pages whether a part is read in order from its index, or (at most COUNT_CAP
    emails) sorted whole from the ids its count read."""
    user = request.getfixturevalue(who)
    expected = newest_first(user, filters)
    assert len(expected) > 3  # more than a page
    monkeypatch.setattr(backlog, "COUNT_CAP", cap)
    parts, count = backlog.counted(backlog.email_list(user, filters))
    assert count == min(len(expected), cap + 1)

    pages = [backlog.newest_page(parts, size=3)]
    while pages[-1].older is not None:
        pages.append(backlog.newest_page(parts, older_than=pages[-1].older, size=3))
    back = [pages[-1]]
    while back[-1].newer is not None:
        back.append(backlog.newest_page(parts, newer_than=back[-1].newer, size=3))

    assert [e.pk for page in pages for e in page.emails] == expected
    assert [e.pk for page in back[::-1] for e in page.emails] == expected
    assert all(len(page.emails) == 3 for page in pages[:-1])
    for cap in (2, 5, len(expected) - 1, len(expected), 100):
        monkeypatch.setattr(backlog, "COUNT_CAP", cap)
        assert backlog.counted(parts)[1] == min(len(expected), cap + 1)


def test_a_rep_never_reads_another_reps_copies_and_a_manager_reads_the_teams(
    rep, manager, administrator, mail_of_a_team
):
    def shown(user) -> set[str]:
        return set(listed(user))

    rep_sees = {e.subject for e in BacklogEmail.objects.filter(copies__mailbox__owner=rep)}
    team_sees = {
        e.subject for e in BacklogEmail.objects.filter(copies__mailbox__owner__team=rep.team)
    }
    assert shown(rep) == rep_sees and shown(manager) == team_sees
    assert rep_sees < team_sees < shown(administrator)
    south = UserFactory(username="stan", role="manager", team=TeamFactory(name="East"))
    assert shown(south) == set()


def test_a_manager_s_page_costs_the_same_for_one_mailbox_or_a_teams(manager):
    def cost() -> int:
        client = logged_in(manager)
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/mail/?direction=inbound&q=hello").status_code == 200
        return len(queries)

    first = mailbox_of(UserFactory(username="r0", role="rep", team=manager.team), "r0@x.example")
    mail(first, "Hello 0", body="hello")
    one = cost()
    for n in range(1, 6):
        owner = UserFactory(username=f"r{n}", role="rep", team=manager.team)
        mail(mailbox_of(owner, f"r{n}@x.example"), f"Hello {n}", body="hello")

    assert cost() == one <= 7
    assert len(listed(manager, "?q=hello")) == 6


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's query plans")
def test_a_reps_page_walks_their_mailboxes_copies_in_order(rep):
    box = mailbox_of(rep, "rita@vigil.example")
    mail(box, "Spring campaign", body="invoice")
    for filters in (backlog.EmailFilters(), backlog.EmailFilters(direction="inbound")):
        (mine, _) = backlog.email_list(rep, filters)
        assert mine.copies is not None
        assert "mailboxcopy_newest" in plan(first_page(mine.copies))


def first_page(copies: backlog.Copies):
    """A page of 50 as the list reads it through a user's mailboxes' copies."""
    return copies.shown.filter(pk__in=backlog._copies_from(copies, 51, None, None))


def plan(rows) -> str:
    """PostgreSQL's plan for `rows`, told to use an index wherever one serves (a test's few
    rows would be read whole otherwise)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        try:
            return rows.explain()
        finally:
            cursor.execute("RESET enable_seqscan")
            cursor.execute("RESET enable_sort")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's query plans")
def test_the_crms_own_mail_is_read_from_its_own_index_newest_first(rep, administrator):
    """The CRM's own mail is a small part of a mailbox: a walk of the whole newest-first order
    tested every email for it (mailsync 0012)."""
    box = mailbox_of(rep, "rita@vigil.example")
    for n in range(3):
        mail(box, f"Campaign {n}")
    BacklogEmail.objects.filter(subject="Campaign 1").update(sent_from_crm=True)
    MailboxCopy.objects.filter(email__subject="Campaign 1").update(sent_from_crm=True)
    crm_only = backlog.EmailFilters(sent_from_crm=True)

    (everyone,) = backlog.email_list(administrator, crm_only)
    assert "backlogemail_from_crm" in plan(everyone.emails[:51])
    mine, _ = backlog.email_list(rep, crm_only)
    assert mine.copies is not None
    assert "mailboxcopy_from_crm" in plan(first_page(mine.copies))
    assert listed(rep, "?crm=1") == listed(administrator, "?crm=1") == ["Campaign 1"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's statistics")
def test_postgresql_keeps_the_frequencies_of_ten_thousand_searched_words(db):
    """A word PostgreSQL keeps no frequency for is taken for half the rarest it keeps: with
    1,000 kept, any address searched for was taken to be in 1 email of 200 (mailsync 0013)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstattarget FROM pg_attribute"
            " WHERE attrelid = 'mailsync_backlogemail'::regclass AND attname = 'search_document'"
        )
        assert cursor.fetchone() == (1000,)  # PostgreSQL keeps ten words a unit of target


def test_a_mailbox_that_changes_hands_between_the_count_and_the_page_is_not_shown(manager):
    """The page reads the emails the count found by id: each is tested again for being in
    the user's mailboxes, which may have changed hands in between."""
    for n in range(3):
        owner = UserFactory(username=f"r{n}", role="rep", team=manager.team)
        mail(mailbox_of(owner, f"r{n}@x.example"), f"Quote {n}", body="hello" if n else "bye")
    stranger = UserFactory(username="sam", role="rep", team=TeamFactory(name="South"))
    mail(mailbox_of(stranger, "sam@x.example"), "Quote elsewhere", body="hello")
    parts, count = backlog.counted(backlog.email_list(manager, backlog.EmailFilters("hello")))

    assert count == 2
    assert listed(manager, "?q=hello") == ["Quote 2", "Quote 1"]
    Mailbox.objects.filter(owner__username="r2").update(owner=stranger)
    assert [e.subject for e in backlog.newest_page(parts).emails] == ["Quote 1"]
