"""A message deleted (expunged) on the server after it was synced stays in the backlog; the
next sync marks its mailbox copy gone, with when, and the email's page says so."""

import uuid
from datetime import UTC, datetime, timedelta

import imapclient
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailsync.models import BacklogEmail, MailboxCopy
from mailsync.sync import sync_mailbox
from tests.clients import logged_in
from tests.factories import UserFactory
from tests.mailsync.factories import imap_mailbox
from tests.mailsync.test_mailbox_sync import message

NOW = datetime(2030, 3, 4, 9, 30, tzinfo=UTC)


@pytest.fixture
def mailbox(rep, dovecot, imap_user):
    return imap_mailbox(rep, dovecot, imap_user)


def expunge(dovecot, user, uids, folder="INBOX"):
    with dovecot.client(user.address) as imap:
        imap.select_folder(folder)
        imap.delete_messages(uids)
        imap.uid_expunge(uids)


def gone_at():
    return dict(MailboxCopy.objects.values_list("email__subject", "gone_at"))


def test_a_message_expunged_on_the_server_is_marked_gone_on_the_next_sync(
    mailbox, dovecot, imap_user, rep, time_machine
):
    dovecot.append(imap_user.name, "INBOX", message("a@client.example", "me@x.test", "Stays"))
    deleted = dovecot.append(
        imap_user.name, "INBOX", message("a@client.example", "me@x.test", "Deleted")
    )
    sent = dovecot.append(imap_user.name, "Sent", message("me@x.test", "a@client.example", "Sent"))
    sync_mailbox(mailbox.pk)
    expunge(dovecot, imap_user, [deleted])
    expunge(dovecot, imap_user, [sent], folder="Sent")
    time_machine.move_to(NOW, tick=False)

    assert sync_mailbox(mailbox.pk).status == "synced"

    assert gone_at() == {"Stays": None, "Deleted": NOW, "Sent": NOW}
    assert BacklogEmail.objects.count() == 3  # the emails stay
    time_machine.move_to(NOW + timedelta(days=1), tick=False)
    sync_mailbox(mailbox.pk)
    assert gone_at() == {"Stays": None, "Deleted": NOW, "Sent": NOW}  # when it went, once


def test_the_email_page_says_where_and_when_it_was_deleted(
    mailbox, dovecot, imap_user, rep, time_machine
):
    dovecot.append(imap_user.name, "INBOX", message("a@client.example", "me@x.test", "Stays"))
    deleted = dovecot.append(
        imap_user.name, "INBOX", message("a@client.example", "me@x.test", "Deleted")
    )
    sync_mailbox(mailbox.pk)
    expunge(dovecot, imap_user, [deleted])
    time_machine.move_to(NOW, tick=False)
    sync_mailbox(mailbox.pk)
    client = logged_in(rep)

    page = client.get(f"/mail/emails/{BacklogEmail.objects.get(subject='Deleted').pk}/")
    kept = client.get(f"/mail/emails/{BacklogEmail.objects.get(subject='Stays').pk}/")

    text = page.content.decode()
    assert f"Deleted from {mailbox.address} Inbox on" in text
    assert f'datetime="{NOW.isoformat()}"' in text
    assert "Deleted from" not in kept.content.decode()


def test_a_copy_deleted_in_one_mailbox_is_gone_there_only_and_shown_to_who_may_see_it(
    rep, dovecot, imap_user
):
    colleague = UserFactory(role="rep", team=rep.team)
    other = dovecot.user(dovecot.add_user(f"expunge-{uuid.uuid4().hex[:8]}"))
    mine, theirs = imap_mailbox(rep, dovecot, imap_user), imap_mailbox(colleague, dovecot, other)
    raw = message("a@client.example", "team@x.test", "To both")
    dovecot.append(imap_user.name, "INBOX", raw)
    deleted = dovecot.append(other.name, "INBOX", raw)
    sync_mailbox(mine.pk), sync_mailbox(theirs.pk)
    expunge(dovecot, other, [deleted])

    sync_mailbox(mine.pk), sync_mailbox(theirs.pk)

    email = BacklogEmail.objects.get()
    gone = {
        mailbox: at is not None for mailbox, at in email.copies.values_list("mailbox", "gone_at")
    }
    assert gone == {mine.pk: False, theirs.pk: True}
    url = f"/mail/emails/{email.pk}/"
    assert f"Deleted from {theirs.address}" in logged_in(colleague).get(url).content.decode()
    assert "Deleted from" not in logged_in(rep).get(url).content.decode()


def test_a_message_moved_back_into_the_folder_is_no_longer_gone(mailbox, dovecot, imap_user):
    uid = dovecot.append(imap_user.name, "INBOX", message("a@client.example", "me@x.test", "Back"))
    sync_mailbox(mailbox.pk)
    with dovecot.client(imap_user.address) as imap:
        imap.select_folder("INBOX")
        imap.move([uid], "Drafts")
    sync_mailbox(mailbox.pk)
    assert gone_at()["Back"] is not None

    with dovecot.client(imap_user.address) as imap:
        imap.select_folder("Drafts")
        imap.move(imap.search(["ALL"]), "INBOX")
    sync_mailbox(mailbox.pk)

    copy = MailboxCopy.objects.get()
    assert (copy.gone_at, copy.uid) == (None, uid + 1)


def test_finding_expunged_messages_costs_the_same_queries_for_one_or_thirty(
    mailbox, dovecot, imap_user
):
    raws = [message("a@client.example", "me@x.test", f"M{n}") for n in range(40)]
    uids = dovecot.append_many(imap_user.name, "INBOX", raws)
    sync_mailbox(mailbox.pk)

    def queries_after_expunging(some):
        expunge(dovecot, imap_user, some)
        with CaptureQueriesContext(connection) as queries:
            assert sync_mailbox(mailbox.pk).status == "synced"
        return len(queries)

    assert queries_after_expunging(uids[:1]) == queries_after_expunging(uids[1:31])
    assert MailboxCopy.objects.filter(gone_at__isnull=False).count() == 31


def test_a_folder_whose_flags_changed_is_not_listed_whole(mailbox, dovecot, imap_user, monkeypatch):
    """A message read on the server moves HIGHESTMODSEQ on, as an expunge does: the sync then
    asks only for the new UIDs, and lists the whole folder only when a message left it."""
    raws = [message("a@client.example", "me@x.test", f"M{n}") for n in range(5)]
    uids = dovecot.append_many(imap_user.name, "INBOX", raws)
    sync_mailbox(mailbox.pk)
    searched = []
    search = imapclient.IMAPClient.search

    def listed(client, criteria="ALL", charset=None):
        searched.append(criteria)
        return search(client, criteria, charset)

    monkeypatch.setattr(imapclient.IMAPClient, "search", listed)
    with dovecot.client(imap_user.address) as imap:
        imap.select_folder("INBOX")
        imap.add_flags(uids[:2], [imapclient.SEEN])
    dovecot.append(imap_user.name, "INBOX", message("b@client.example", "me@x.test", "New"))

    sync_mailbox(mailbox.pk)

    assert ["ALL"] not in searched and "ALL" not in searched
    assert BacklogEmail.objects.count() == 6 and not gone_at().get("M0")
    expunge(dovecot, imap_user, uids[:1])
    sync_mailbox(mailbox.pk)
    assert ["ALL"] in searched
    assert gone_at()["M0"] is not None and gone_at()["M1"] is None
