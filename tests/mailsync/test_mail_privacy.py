"""A copy in my mailbox never lets me read or rewrite yours: emails are keyed by what they
say, and a user reads one only through a copy in a mailbox they may see, or through the outbox
message it was sent as, with the visibility of what that message was about."""

import uuid
from email.message import EmailMessage

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from mailsync import outbox
from mailsync.models import BacklogEmail, MailboxCopy
from mailsync.sync import sync_mailbox
from tests.clients import logged_in
from tests.factories import TeamFactory, UserFactory
from tests.mailsync.factories import RPHFactory, imap_mailbox

CONTRACT_ID = "<contract-1@client.example>"


def message(
    body,
    *,
    subject="Contract",
    msgid=CONTRACT_ID,
    sender="buyer@client.example",
    to="rep@vigil.example",
    date=None,
    received=None,
):
    msg = EmailMessage()
    if received:
        msg["Received"] = received
        msg["Delivered-To"] = to
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Date"] = date or "Mon, 30 Nov 2026 10:00:00 +0000"
    msg["Message-ID"] = msgid
    msg.set_content(body)
    return msg.as_bytes()


@pytest.fixture
def rep_a(db):
    return UserFactory(username="ana_north", role="rep", team=TeamFactory(name="North"))


@pytest.fixture
def rep_b(db):
    return UserFactory(username="ben_south", role="rep", team=TeamFactory(name="South"))


@pytest.fixture
def mailboxes(rep_a, rep_b, dovecot):
    users = [dovecot.user(dovecot.add_user(f"privacy-{uuid.uuid4().hex[:8]}")) for _ in "ab"]
    return [
        imap_mailbox(owner, dovecot, user)
        for owner, user in zip((rep_a, rep_b), users, strict=True)
    ], users


def store(dovecot, mailbox, user, raw, folder="INBOX"):
    dovecot.append(user.name, folder, raw)
    sync_mailbox(mailbox.pk)


def page(user, email):
    return logged_in(user).get(f"/mail/emails/{email.pk}/")


def test_a_stub_with_my_message_id_does_not_open_my_email(mailboxes, rep_a, rep_b, dovecot):
    (box_a, box_b), (user_a, user_b) = mailboxes
    store(dovecot, box_a, user_a, message("Our floor is 41,000 EUR"))
    store(dovecot, box_b, user_b, message("stub", subject="anything"))

    real = BacklogEmail.objects.get(copies__mailbox=box_a)
    stub = BacklogEmail.objects.get(copies__mailbox=box_b)
    assert real.pk != stub.pk
    assert page(rep_b, real).status_code == 404
    shown = page(rep_b, stub)
    assert shown.status_code == 200 and "41,000" not in shown.content.decode()
    assert "41,000" in page(rep_a, real).content.decode()


def test_a_stub_stored_first_does_not_rewrite_my_email(mailboxes, rep_a, dovecot):
    (box_a, box_b), (user_a, user_b) = mailboxes
    store(dovecot, box_b, user_b, message("stub", subject="Pay to this account"))
    store(dovecot, box_a, user_a, message("Our floor is 41,000 EUR"))

    mine = BacklogEmail.objects.get(copies__mailbox=box_a)
    assert (mine.subject, mine.text_body.strip()) == ("Contract", "Our floor is 41,000 EUR")
    content = page(rep_a, mine).content.decode()
    assert "41,000" in content and "Pay to this account" not in content


def test_distinct_messages_sharing_a_message_id_are_each_stored(mailboxes, dovecot):
    (box_a, _), (user_a, _) = mailboxes
    for n in range(3):
        dovecot.append(user_a.name, "INBOX", message(f"version {n}", subject=f"V{n}"))
    sync_mailbox(box_a.pk)

    assert sorted(BacklogEmail.objects.values_list("subject", flat=True)) == ["V0", "V1", "V2"]
    assert set(BacklogEmail.objects.values_list("message_key", flat=True)) == {
        "contract-1@client.example"
    }


def test_the_same_message_in_two_mailboxes_is_one_email_with_two_copies(
    mailboxes, rep_a, rep_b, dovecot
):
    (box_a, box_b), (user_a, user_b) = mailboxes
    # Delivered to both: the transport headers differ, what the message says does not.
    store(dovecot, box_a, user_a, message("To both", received="from mx1 by a; Mon, 30 Nov 2026"))
    store(dovecot, box_b, user_b, message("To both", received="from mx2 by b; Mon, 30 Nov 2026"))

    email = BacklogEmail.objects.get()
    assert set(email.copies.values_list("mailbox", flat=True)) == {box_a.pk, box_b.pk}
    assert page(rep_a, email).status_code == page(rep_b, email).status_code == 200


def test_a_message_id_in_our_mail_domain_is_not_sent_from_the_crm(mailboxes, rep_b, dovecot):
    (box_a, _), (user_a, _) = mailboxes
    forged = message("Looks internal", msgid=f"<x1@{settings.VIGIL_MAIL_DOMAIN}>")
    store(dovecot, box_a, user_a, forged)

    email = BacklogEmail.objects.get()
    assert (email.sent_from_crm, email.outbox_id) == (False, None)
    assert page(rep_b, email).status_code == 404


def sent_email(key, *, about=None, to="lead@client.example", from_email="", html=""):
    now = timezone.now()
    outbox.queue(
        [
            outbox.Email(
                key=key,
                to=[to],
                subject="Our offer",
                text_body="Hello, our price is 12,500 EUR",
                html_body=html,
                source="test",
                from_email=from_email,
                about=about,
            )
        ],
        now,
    )
    outbox.deliver(outbox.claim(now, 10), now)
    return BacklogEmail.objects.get(content_key__startswith="outbox:", outbox__key=key)


def test_crm_sent_mail_is_read_with_the_visibility_of_what_it_was_about(rep_a, rep_b):
    lead = RPHFactory(owner=rep_a)
    about_the_lead = sent_email("nurture-like", about=lead, to=lead.email)
    about_nothing = sent_email("summary-like", to="someone@client.example")
    administrator = UserFactory(role="admin", is_staff=True, is_superuser=True)

    assert page(rep_a, about_the_lead).status_code == 200
    assert page(UserFactory(role="rep", team=rep_a.team), about_the_lead).status_code == 200
    assert page(rep_b, about_the_lead).status_code == 404
    assert page(rep_a, about_nothing).status_code == 404
    assert page(administrator, about_nothing).status_code == 200
    threads = logged_in(rep_b).get(f"/rph/{lead.pk}/emails/")
    assert threads.status_code == 404  # and a team that may see the lead sees the email:
    assert "Our offer" in logged_in(rep_a).get(f"/rph/{lead.pk}/emails/").content.decode()


def test_crm_sent_mail_follows_a_user_who_changes_team_or_role(rep_a, rep_b):
    # The outbox side of visibility is compiled once per user (backlog._sent_about): a move
    # to another team, or a rep made manager or administrator, must read it anew.
    lead = RPHFactory(owner=rep_a)
    about_the_lead = sent_email("nurture-like", about=lead, to=lead.email)
    assert page(rep_b, about_the_lead).status_code == 404
    rep_b.team = rep_a.team
    rep_b.save()
    assert page(rep_b, about_the_lead).status_code == 200
    rep_b.team = TeamFactory(name="East")
    rep_b.save()
    assert page(rep_b, about_the_lead).status_code == 404
    rep_b.role, rep_b.team = "admin", None
    rep_b.save()
    assert page(rep_b, about_the_lead).status_code == 200


def test_a_copy_that_says_something_else_does_not_join_the_crm_email(mailboxes, dovecot):
    (box_a, _), (user_a, _) = mailboxes
    html = "<p>Hello, our price is <b>12,500 EUR</b></p>"
    sent = sent_email("offer-1", to=user_a.address, from_email="sales@vigil.example", html=html)
    delivered = mail.outbox[-1].message()

    # Whoever received it knows its Message-ID and outbox key: forgeries with both, one with
    # other words, one with the same text but other HTML, one with an attachment.
    def forgery(text, html=None, attachment=None):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "sales@vigil.example", user_a.address, "Our offer"
        msg["Message-ID"], msg["X-Vigil-Outbox"] = delivered["Message-ID"], sent.outbox.key
        msg.set_content(text)
        if html:
            msg.add_alternative(html, subtype="html")
        if attachment:
            msg.add_attachment(attachment, maintype="application", subtype="octet-stream")
        return msg.as_bytes()

    same_text = "Hello, our price is 12,500 EUR"
    for raw in (
        forgery("Our price is 1 EUR", html),
        forgery(same_text, "<p>Pay to IBAN XX00 instead</p>"),
        forgery(same_text, html, attachment=b"MZ executable"),
    ):
        store(dovecot, box_a, user_a, raw)

    sent.refresh_from_db()
    assert "12,500" in sent.text_body and not sent.copies.exists()
    copies = BacklogEmail.objects.filter(copies__mailbox=box_a)
    assert copies.count() == 3
    assert {(c.sent_from_crm, c.outbox_id) for c in copies} == {(False, None)}

    # The very email, as the recipient's provider delivered it, joins the CRM's row.
    store(dovecot, box_a, user_a, delivered.as_bytes())
    assert MailboxCopy.objects.filter(email=sent, mailbox=box_a).count() == 1
    assert BacklogEmail.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_the_migration_keys_stored_emails_by_content_and_reads_every_copy_again():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from crm.models import RPH
    from nurture.models import Enrollment
    from tests.nurture.conftest import make_sequence

    before = [("mailsync", "0004_mailbox_sync")]
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Mailbox, Folder = old.get_model("mailsync", "Mailbox"), old.get_model("mailsync", "MailFolder")
    Email, Copy = (
        old.get_model("mailsync", "BacklogEmail"),
        old.get_model("mailsync", "MailboxCopy"),
    )
    Outbox = old.get_model("mailsync", "OutboxMessage")
    now = timezone.now()
    north, south = TeamFactory(name="North"), TeamFactory(name="South")
    ana, ben = UserFactory(team=north), UserFactory(team=south)
    boxes = []
    for owner in (ana, ben):
        box = Mailbox.objects.create(
            owner_id=owner.pk,
            provider="imap",
            auth="password",
            address=f"{owner.username}@x",
            username="u",
            imap_host="h",
            status="active",
            created_at=now,
        )
        Folder.objects.create(mailbox=box, role="inbox", name="INBOX", uidvalidity=7, last_uid=9)
        boxes.append(box)
    fields = dict(thread_key="t", direction="inbound", created_at=now, date=now)
    contract = Email.objects.create(
        message_key="contract-1@client.example",
        message_id="contract-1@client.example",
        subject="Contract",
        text_body="Our floor is 41,000 EUR",
        **fields,
    )
    Copy.objects.create(email=contract, mailbox=boxes[0], folder="inbox", uidvalidity=7, uid=3)
    Copy.objects.create(email=contract, mailbox=boxes[1], folder="inbox", uidvalidity=7, uid=5)
    domain_tagged = Email.objects.create(
        message_key="x1@vigil.localhost",
        message_id="x1@vigil.localhost",
        sent_from_crm=True,
        **fields,
    )
    Copy.objects.create(email=domain_tagged, mailbox=boxes[0], folder="inbox", uidvalidity=7, uid=4)
    for n, key in enumerate(("sha256:aaa", "sha256:bbb")):  # no Message-ID: keyed by raw bytes
        twin = Email.objects.create(message_key=key, subject="No id", text_body="Same", **fields)
        Copy.objects.create(email=twin, mailbox=boxes[n], folder="inbox", uidvalidity=7, uid=6)
    make_sequence()
    lead = RPH.objects.create(
        name="Lead",
        email="l@client.example",
        owner=ana,
        status=RPH.Status.NURTURE_P2,
        status_changed_at=now,
    )
    enrollment = Enrollment.objects.get(rph=lead)
    sent = Outbox.objects.create(
        key=f"nurture:{enrollment.pk}:1",
        source="nurture_send",
        from_email="s@vigil.example",
        to=["l@client.example"],
        subject="S",
        text_body="B",
        message_id="<n1@vigil.localhost>",
        next_attempt_at=now,
        created_at=now,
    )
    Email.objects.create(
        message_key="n1@vigil.localhost", outbox=sent, sent_from_crm=True, **fields
    )

    MigrationExecutor(connection).migrate(latest)

    from mailsync.backlog import content_key
    from mailsync.models import BacklogEmail, MailboxCopy, MailFolder, OutboxMessage

    contract = BacklogEmail.objects.get(subject="Contract")
    assert contract.content_key == content_key(
        BacklogEmail.objects.filter(pk=contract.pk).values()[0]
    )
    # Which copy the content came from was never recorded: every copy is read again.
    assert not MailboxCopy.objects.exists()
    assert set(MailFolder.objects.values_list("last_uid", flat=True)) == {0}
    assert BacklogEmail.objects.filter(subject="No id").count() == 1
    assert BacklogEmail.objects.get(message_key="x1@vigil.localhost").sent_from_crm is False
    assert BacklogEmail.objects.get(outbox=sent.pk).content_key == f"outbox:{sent.pk}"
    assert OutboxMessage.objects.get(pk=sent.pk).about_id == lead.pk


def test_a_nurture_email_is_about_its_lead(rep_a):
    from crm.models import RPH
    from nurture.models import Enrollment
    from nurture.sending import compose
    from tests.nurture.conftest import make_sequence

    make_sequence()
    lead = RPHFactory(owner=rep_a, status=RPH.Status.NURTURE_P2)
    enrollment = Enrollment.objects.select_related("rph__owner", "step__template").get(rph=lead)

    assert compose(enrollment, lead.email).about == lead


def test_a_stored_row_gives_back_the_key_its_message_was_stored_under(mailboxes, dovecot):
    """The migration keys stored rows from their fields: the key must not depend on whether
    it was computed from the parsed message or from the row the database gives back."""
    from mailsync.backlog import content_key

    (box_a, _), (user_a, _) = mailboxes
    msg = EmailMessage()
    msg["From"], msg["To"] = "Zoë Ærø <zoe@client.example>", f"{user_a.address}, b@client.example"
    msg["Cc"], msg["Subject"] = "c@client.example", "Réunion — 41 000 €"
    msg["Date"], msg["Message-ID"] = "Tue, 01 Dec 2026 09:30:15 -0500", "<r1@client.example>"
    msg["In-Reply-To"], msg["References"] = "<p@client.example>", "<root@x> <p@client.example>"
    msg.set_content("Plain text ünïcode\n\n  with spacing  \n")
    msg.add_alternative("<p>HTML <b>body</b><script>x()</script></p>", subtype="html")
    msg.add_attachment(b"%PDF-1.4 data", maintype="application", subtype="pdf", filename="a.pdf")
    store(dovecot, box_a, user_a, msg.as_bytes())
    store(dovecot, box_a, user_a, b"\x00\xff not an email at all")

    for row in BacklogEmail.objects.values():
        assert content_key(row) == row["content_key"]
    assert BacklogEmail.objects.filter(unparsed=True).count() == 1
