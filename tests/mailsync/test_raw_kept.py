"""The raw message of every email whose parse noted a problem is kept, compressed, up to a
size that is a setting, and `manage.py reparse_emails` reads kept messages again with the
current parser."""

import hashlib
import zlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from mailsync import backlog
from mailsync.backlog import content_key, raw_message
from mailsync.models import BacklogEmail, EmailAddress, MailboxCopy
from mailsync.sync import sync_mailbox
from tests.mailsync.factories import imap_mailbox
from tests.mailsync.test_mailbox_sync import message

LATIN1 = (
    b"From: Jos\xe9 P\xe9rez <jose@client.example>\r\nTo: me@x.test\r\n"
    b"Subject: Caf\xe9\r\nMessage-ID: <latin1@client.example>\r\n"
    b"Date: Tue, 01 Dec 2026 09:30:15 +0000\r\n\r\nOl\xe9\r\n"
)
NO_DATE = (
    b"From: ana@client.example\r\nTo: me@x.test\r\nSubject: Undated\r\n"
    b"Message-ID: <undated@client.example>\r\n\r\nWhen was this sent?\r\n"
)
GARBAGE = b"\xff\xfe not an email at all"


@pytest.fixture
def mailbox(rep, dovecot, imap_user):
    return imap_mailbox(rep, dovecot, imap_user)


def synced(mailbox, dovecot, imap_user, *raws):
    for raw in raws:
        dovecot.append(imap_user.name, "INBOX", raw)
    sync_mailbox(mailbox.pk)


def test_an_email_with_parse_warnings_keeps_its_raw_message_compressed(mailbox, dovecot, imap_user):
    synced(mailbox, dovecot, imap_user, NO_DATE, message("a@client.example", "me@x.test", "Fine"))

    noted = BacklogEmail.objects.get(subject="Undated")
    clean = BacklogEmail.objects.get(subject="Fine")

    assert (noted.parse_warnings, noted.raw_compressed) == (["no Date header"], True)
    assert zlib.decompress(noted.raw) == NO_DATE == raw_message(noted)
    assert (clean.parse_warnings, clean.raw) == ([], None)


def test_a_message_over_the_size_limit_is_not_kept_and_its_warnings_say_so(
    mailbox, dovecot, imap_user, settings
):
    settings.VIGIL_MAILSYNC_RAW_KEEP_BYTES = 100

    synced(mailbox, dovecot, imap_user, NO_DATE)

    email = BacklogEmail.objects.get()
    assert email.raw is None
    assert email.parse_warnings == [
        "no Date header",
        f"raw message of {len(NO_DATE)} bytes not kept (over 100)",
    ]


def test_an_unparsed_message_is_kept_whatever_its_size_under_the_key_of_its_bytes(
    mailbox, dovecot, imap_user, settings
):
    settings.VIGIL_MAILSYNC_RAW_KEEP_BYTES = 0

    synced(mailbox, dovecot, imap_user, GARBAGE)

    email = BacklogEmail.objects.get()
    assert email.unparsed and raw_message(email) == GARBAGE
    assert email.content_key == "sha256:" + hashlib.sha256(GARBAGE).hexdigest()
    assert content_key(BacklogEmail.objects.values().get()) == email.content_key


# Reading kept messages again


def as_an_old_parser_stored(source, mailbox, **fields):
    """A row as an earlier parser stored `source`, with a copy in `mailbox` and its address."""
    row = dict(
        message_key="latin1@client.example",
        message_id="latin1@client.example",
        thread_key="latin1@client.example",
        from_name="Jos\ufffd P\ufffdrez",
        from_address="jose@client.example",
        to=["me@x.test"],
        subject="Caf\ufffd",
        text_body="Ol\ufffd\n",
        raw_size=len(source),
        raw=zlib.compress(source),
        raw_compressed=True,
        parse_warnings=["Subject: 8-bit bytes that are not UTF-8, replaced"],
        direction=BacklogEmail.Direction.INBOUND,
        created_at=timezone.now(),
    )
    row.update(fields)
    email = BacklogEmail(**row)
    email.content_key = content_key(vars(email))
    email.save()
    MailboxCopy.objects.create(email=email, mailbox=mailbox, folder="inbox", uidvalidity=1, uid=1)
    EmailAddress.objects.create(email=email, address="jose@client.example", role="from")
    return email


def reparse(*args):
    out = StringIO()
    call_command("reparse_emails", *args, stdout=out)
    return out.getvalue().strip()


def test_reparse_reads_kept_messages_again_and_a_second_run_changes_nothing(
    mailbox, dovecot, imap_user
):
    garbled = as_an_old_parser_stored(LATIN1, mailbox)
    old_key = garbled.content_key

    assert reparse() == (
        "re-parsed 1 kept messages: 1 changed, 0 kept their old key (another email says the "
        "same), 0 unreadable"
    )

    email = BacklogEmail.objects.get()
    assert (email.pk, email.from_name, email.subject, email.text_body) == (
        garbled.pk,
        "José Pérez",
        "Café",
        "Olé\n",
    )
    assert all("windows-1252" in w for w in email.parse_warnings)
    assert email.content_key != old_key
    assert email.content_key == content_key(BacklogEmail.objects.values().get())
    assert MailboxCopy.objects.get().email_id == email.pk
    assert reparse().startswith("re-parsed 1 kept messages: 0 changed")
    # The same message synced now joins the re-parsed row instead of making a second one.
    synced(mailbox, dovecot, imap_user, LATIN1)
    assert BacklogEmail.objects.count() == 1


def test_a_message_once_unparsed_gets_its_fields_and_addresses(mailbox):
    raw = message("Ana <ana@client.example>", "me@x.test, bob@client.example", "Readable now")
    legacy = BacklogEmail.objects.create(  # stored as received, before 0008 compressed it
        content_key="sha256:" + hashlib.sha256(raw).hexdigest(),
        message_key="sha256:" + hashlib.sha256(raw).hexdigest(),
        thread_key="sha256:" + hashlib.sha256(raw).hexdigest(),
        raw=raw,
        raw_size=len(raw),
        unparsed=True,
        parse_warnings=["could not parse: IndexError"],
        direction=BacklogEmail.Direction.INBOUND,
        created_at=timezone.now(),
    )

    reparse()

    email = BacklogEmail.objects.get(pk=legacy.pk)
    assert (email.unparsed, email.subject, email.from_name) == (False, "Readable now", "Ana")
    assert email.content_key.startswith("content:")
    assert sorted(EmailAddress.objects.values_list("address", "role")) == [
        ("ana@client.example", "from"),
        ("bob@client.example", "to"),
        ("me@x.test", "to"),
    ]


def test_a_row_whose_new_key_another_row_holds_keeps_its_old_key(mailbox, dovecot, imap_user):
    garbled = as_an_old_parser_stored(LATIN1, mailbox)
    old_key = garbled.content_key
    synced(mailbox, dovecot, imap_user, LATIN1)  # the current parser's row of the same message
    assert BacklogEmail.objects.count() == 2

    assert "1 changed, 1 kept their old key" in reparse()

    garbled.refresh_from_db()
    assert (garbled.subject, garbled.content_key) == ("Café", old_key)
    assert BacklogEmail.objects.filter(subject="Café").count() == 2


def test_an_unreadable_kept_message_is_counted_and_skipped(mailbox):
    as_an_old_parser_stored(b"", mailbox, raw=b"not zlib")
    as_an_old_parser_stored(LATIN1, mailbox, message_id="second@client.example")

    assert reparse("--batch", "1") == (
        "re-parsed 2 kept messages: 1 changed, 0 kept their old key (another email says the "
        "same), 1 unreadable"
    )


def test_a_batch_below_one_is_refused():
    with pytest.raises(CommandError, match="--batch must be at least 1"):
        reparse("--batch", "0")


def test_reparse_reads_no_more_raw_bytes_at_once_than_its_limit(mailbox, monkeypatch):
    """Unparsed messages are kept whatever their size: a batch is cut at REPARSE_BYTES of raw
    messages (at least one), not only at its row count."""
    rows = [(1, 30 << 20), (2, 30 << 20), (3, 1)]
    assert backlog._within_bytes(rows, 32 << 20) == [1]
    assert backlog._within_bytes([(7, 100 << 20)], 32 << 20) == [7]
    assert backlog._within_bytes([(1, 10), (2, 10), (3, 10)], 25) == [1, 2]
    for n in range(3):
        raw = message("ana@client.example", "me@x.test", f"Once unreadable {n}")
        BacklogEmail.objects.create(
            content_key=f"sha256:{n}",
            message_key=f"sha256:{n}",
            thread_key=f"sha256:{n}",
            raw=raw,
            raw_size=len(raw),
            unparsed=True,
            direction=BacklogEmail.Direction.INBOUND,
            created_at=timezone.now(),
        )
    batches = []
    read_in = backlog._reparse_rows
    monkeypatch.setattr(backlog, "REPARSE_BYTES", 1)
    monkeypatch.setattr(backlog, "_reparse_rows", lambda pks: batches.append(pks) or read_in(pks))

    reparse()

    assert [len(pks) for pks in batches] == [1, 1, 1]
    assert not BacklogEmail.objects.filter(unparsed=True).exists()
