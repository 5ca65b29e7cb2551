"""What the backlog does with synced mail: links it to contacts, accounts and leads, shows it
as threads where users work, stops a nurture sequence on a reply, and keeps whatever it could
read of a malformed message."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from crm.models import RPH
from mailsync.models import BacklogEmail, OutboxMessage, Suppression
from mailsync.suppression import unsubscribe_token
from mailsync.sync import sync_mailbox
from nurture.models import Enrollment, SentStep
from tests.factories import TeamFactory
from tests.mailsync.factories import ContactFactory, RPHFactory, imap_mailbox
from tests.mailsync.test_mailbox_sync import message


@pytest.fixture
def mailbox(rep, dovecot, imap_user):
    return imap_mailbox(rep, dovecot, imap_user)


def test_an_account_contact_and_lead_show_their_threads(
    client, rep, mailbox, dovecot, imap_user, django_assert_max_num_queries
):
    contact = ContactFactory(account__team=rep.team, email="Ana@Client.Example")
    lead = RPHFactory(owner=rep, email="lead@client.example")
    first = message("ana@client.example", imap_user.address, "Spring campaign")
    dovecot.append(imap_user.name, "INBOX", first)
    reply = message(
        imap_user.address,
        "Ana <ana@client.example>",
        "Re: Spring campaign",
        headers={"In-Reply-To": _msgid(first), "References": _msgid(first)},
    )
    dovecot.append(imap_user.name, "Sent", reply)
    dovecot.append(imap_user.name, "INBOX", message("lead@client.example", "me@x.test", "Hi"))
    sync_mailbox(mailbox.pk)
    client.force_login(rep)

    with django_assert_max_num_queries(12):
        account_page = client.get(f"/accounts/{contact.account_id}/emails/").content.decode()
    contact_page = client.get(f"/contacts/{contact.pk}/emails/").content.decode()
    lead_page = client.get(f"/rph/{lead.pk}/").content.decode()

    for page in (account_page, contact_page):
        assert "Spring campaign" in page and "2 emails" in page
        assert "Hi</strong>" not in page
    assert "Hi</strong>" in lead_page and "Spring campaign" not in lead_page


def test_another_teams_account_page_is_refused(client, rep, mailbox):
    other = ContactFactory(account__team=TeamFactory(name="South"))
    client.force_login(rep)

    assert client.get(f"/accounts/{other.account_id}/emails/").status_code == 404
    assert client.get(f"/contacts/{other.pk}/emails/").status_code == 404


def test_an_email_page_shows_sanitised_html_in_a_sandbox(client, rep, mailbox, dovecot, imap_user):
    raw = (
        b"From: a@client.example\r\nTo: me@x.test\r\nSubject: Offer\r\n"
        b"Message-ID: <xss@client.example>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b'<p onclick="steal()">Deal</p><script>steal()</script>'
        b'<img src="https://tracker.example/p.gif"><a href="javascript:steal()">x</a>'
    )
    dovecot.append(imap_user.name, "INBOX", raw)
    sync_mailbox(mailbox.pk)
    email = BacklogEmail.objects.get()
    client.force_login(rep)

    response = client.get(f"/mail/emails/{email.pk}/")

    page = response.content.decode()
    assert "Deal" in page
    for bad in ("steal()", "onclick", "tracker.example", "javascript:"):
        assert bad not in page
    assert "<iframe" in page and " sandbox " in page
    assert "img-src 'self'" in response["Content-Security-Policy"]


def test_a_leads_reply_stops_its_nurture_sequence(rep, mailbox, dovecot, imap_user, nurtured):
    lead, enrollment = nurtured
    dovecot.append(
        imap_user.name, "INBOX", message(f"Lead <{lead.email.upper()}>", "me@x.test", "Yes!")
    )

    sync_mailbox(mailbox.pk)

    enrollment.refresh_from_db()
    lead.refresh_from_db()
    assert enrollment.status == Enrollment.Status.REPLIED
    assert lead.status == RPH.Status.CONTACTED


def test_a_reply_to_a_sequence_email_from_another_address_stops_it(
    rep, mailbox, dovecot, imap_user, nurtured
):
    lead, enrollment = nurtured
    sent = OutboxMessage.objects.get(key=SentStep.objects.get(enrollment=enrollment).outbox_key)
    reply = message(
        "assistant@client.example",
        "me@x.test",
        "Re: your offer",
        headers={"In-Reply-To": sent.message_id},
    )
    dovecot.append(imap_user.name, "INBOX", reply)

    sync_mailbox(mailbox.pk)

    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.REPLIED


def test_mail_from_before_the_enrollment_is_not_a_reply(rep, mailbox, dovecot, imap_user, nurtured):
    lead, enrollment = nurtured
    old = message(lead.email, "me@x.test", "Last year").replace(
        b"Date: ", b"Date: Mon, 03 Feb 2025 10:00:00 +0000\r\nX-Old-Date: ", 1
    )
    dovecot.append(imap_user.name, "INBOX", old)

    sync_mailbox(mailbox.pk)

    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.ACTIVE


MALFORMED = {
    "no message id, broken base64": (
        b"From: a@client.example\r\nSubject: Broken\r\nContent-Type: text/plain\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64@@@\r\n"
    ),
    "unknown charset": (
        b"From: b@client.example\r\nSubject: Charset\r\nMessage-ID: <cs@client.example>\r\n"
        b"Content-Type: text/plain; charset=x-unknown-42\r\n\r\ncaf\xe9\r\n"
    ),
    "8-bit header": b"From: C\xe9line <c@client.example>\r\nSubject: caf\xe9\r\n\r\nbody\r\n",
    "header injection": (
        b"From: d@client.example\r\nSubject: =?utf-8?q?Hi=0D=0ABcc:_victim@x.test?=\r\n"
        b"Message-ID: <inj@client.example>\r\n\r\nbody\r\n"
    ),
    "non-ascii address": (
        "From: José <josé@bücher.example>\r\nSubject: IDN\r\n"
        "Message-ID: <idn@client.example>\r\n\r\nhola\r\n".encode()
    ),
    "multipart without boundary": (
        b"From: e@client.example\r\nSubject: MP\r\nMessage-ID: <mp@client.example>\r\n"
        b"Content-Type: multipart/mixed\r\n\r\n--x\r\nnot really\r\n"
    ),
    "garbage": bytes(range(1, 256)) * 4,
}


def test_malformed_messages_are_stored_with_what_could_be_read(mailbox, dovecot, imap_user):
    for raw in MALFORMED.values():
        dovecot.append(imap_user.name, "INBOX", raw)
    dovecot.append(imap_user.name, "INBOX", message("ok@client.example", "me@x.test", "Fine"))

    outcome = sync_mailbox(mailbox.pk)

    assert (outcome.status, outcome.stored) == ("synced", len(MALFORMED) + 1)
    emails = {e.subject: e for e in BacklogEmail.objects.all()}
    assert emails["Broken"].message_key.startswith("sha256:")
    assert "caf" in emails["Charset"].text_body
    assert "\n" not in emails["Hi Bcc: victim@x.test"].subject
    assert emails["IDN"].from_address == "josé@xn--bcher-kva.example"
    assert not emails["Fine"].parse_warnings
    assert all(e.parse_warnings or e.unparsed for k, e in emails.items() if k == "Broken")


@pytest.fixture
def nurtured(rep):
    """A lead in Nurture P2 whose sequence sent its first email yesterday."""
    from nurture.jobs import send_due
    from tests.nurture.conftest import make_sequence

    make_sequence()
    now = timezone.now()
    lead = RPHFactory(
        owner=rep,
        email="lead@client.example",
        status=RPH.Status.NURTURE_P2,
        status_changed_at=now - timedelta(days=2),
    )
    assert send_due(now - timedelta(days=1), durable=False)["sent"] == 1
    return lead, Enrollment.objects.get(rph=lead)


def _msgid(raw: bytes) -> str:
    for line in raw.split(b"\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    raise AssertionError("no Message-ID")


def test_an_unsubscribe_request_by_mail_suppresses_the_address(mailbox, dovecot, imap_user):
    token = unsubscribe_token("Lead@Client.Example")
    other = unsubscribe_token("other@client.example")  # sent to another address
    inbox = f"unsubscribe@{settings.VIGIL_MAIL_DOMAIN}"
    dovecot.append(imap_user.name, "INBOX", message("x@y.example", inbox, f"unsubscribe {token}"))
    dovecot.append(imap_user.name, "INBOX", message("x@y.example", inbox, "unsubscribe forged"))
    dovecot.append(
        imap_user.name, "INBOX", message("x@y.example", "me@x.test", f"unsubscribe {other}")
    )

    sync_mailbox(mailbox.pk)

    assert list(Suppression.objects.values_list("address", "source")) == [
        ("lead@client.example", "unsubscribe")
    ]
