"""Signing in to a generic IMAP mailbox: a password LOGIN cannot carry (not ASCII) goes as
AUTHENTICATE PLAIN in UTF-8; a password refused, or one the server offers no way to take, asks
the owner to reconnect; and no part of the password shows anywhere."""

import logging

import pytest

from mailsync import crypto
from mailsync.models import Mailbox
from mailsync.sync import sync_mailbox
from monitoring.models import ErrorEvent
from notifications.models import Notification
from tests.mailsync.factories import imap_mailbox
from tests.mailsync.test_mailbox_sync import message

SECRET = "Pässw0rd-s3cr3t-ÄÖÜ-xyz"


def pieces(secret: str) -> set[str]:
    """Every part of `secret` of 4 characters or more."""
    return {secret[i:j] for i in range(len(secret)) for j in range(i + 4, len(secret) + 1)}


def leaks(text: str) -> list[str]:
    return sorted(piece for piece in pieces(SECRET) if piece in text)


def everything_shown(client, mailbox: Mailbox, caplog) -> str:
    """All a person or an administrator could read about the mailbox and its failures."""
    mailbox.refresh_from_db()
    client.force_login(mailbox.owner)
    events = ErrorEvent.objects.values_list("title", "message", "traceback", "context")
    return "\n".join(
        [
            mailbox.last_error,
            caplog.text,
            *(str(event) for event in events),
            *Notification.objects.values_list("title", flat=True),
            client.get("/mail/mailboxes/").text,
            client.get(f"/mail/mailboxes/{mailbox.pk}/connect").text,
        ]
    )


@pytest.fixture
def user_with_secret(dovecot):
    return dovecot.user(dovecot.add_user(f"umlaut{id(object())}", password=SECRET))


def test_a_password_with_non_ascii_characters_signs_in_and_syncs(
    rep, dovecot, user_with_secret, caplog
):
    caplog.set_level(logging.DEBUG)
    mailbox = imap_mailbox(rep, dovecot, user_with_secret)
    dovecot.append(user_with_secret.address, "INBOX", message("a@client.example", "me@x.test"))

    outcome = sync_mailbox(mailbox.pk)

    mailbox.refresh_from_db()
    assert (outcome.status, outcome.stored, mailbox.status) == ("synced", 1, Mailbox.Status.ACTIVE)
    assert leaks(caplog.text) == []


def test_a_refused_password_asks_the_owner_to_reconnect_and_shows_no_part_of_it(
    client, rep, dovecot, user_with_secret, caplog
):
    caplog.set_level(logging.DEBUG)
    mailbox = imap_mailbox(rep, dovecot, user_with_secret, secret=crypto.encrypt(SECRET + "x"))

    outcomes = [sync_mailbox(mailbox.pk).status for _ in range(2)]

    mailbox.refresh_from_db()
    assert outcomes == ["reconnect", "skipped"]
    assert mailbox.status == Mailbox.Status.RECONNECT
    notice = Notification.objects.get(user=rep, status="open")
    assert notice.link == f"/mail/mailboxes/{mailbox.pk}/connect"
    assert leaks(everything_shown(client, mailbox, caplog)) == []


def test_a_server_that_cannot_take_the_password_asks_the_owner_to_reconnect(
    client, rep, dovecot_without_plain, caplog
):
    caplog.set_level(logging.DEBUG)
    server = dovecot_without_plain
    user = server.user(server.add_user(f"noplain{id(object())}", password=SECRET))
    mailbox = imap_mailbox(rep, server, user)

    outcome = sync_mailbox(mailbox.pk)

    mailbox.refresh_from_db()
    assert (outcome.status, mailbox.status) == ("reconnect", Mailbox.Status.RECONNECT)
    assert Notification.objects.filter(user=rep, status="open").count() == 1
    assert not ErrorEvent.objects.exists()
    assert leaks(everything_shown(client, mailbox, caplog)) == []
