"""The mailbox sync against a real Dovecot: INBOX and Sent into the backlog, incrementally,
once per email, without touching the user's read flags."""

import logging
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from crm.runner import run_job
from mailsync import crypto, outbox
from mailsync.models import BacklogEmail, EmailAddress, Mailbox, MailboxCopy, OutboxMessage
from mailsync.sync import sync_mailbox
from notifications.models import Notification
from tests.factories import TeamFactory, UserFactory
from tests.mailsync.factories import imap_mailbox
from tests.mailsync.smtp import free_port
from tests.processes import at_once


def message(sender, to, subject="Hello", *, body="Hi there", msgid=None, headers=None):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Date"] = format_datetime(timezone.now())
    msg["Message-ID"] = msgid or make_msgid(domain="client.example")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes()


@pytest.fixture
def mailbox(rep, dovecot, imap_user):
    return imap_mailbox(rep, dovecot, imap_user)


def test_first_sync_stores_inbox_and_sent_then_only_what_is_new(mailbox, dovecot, imap_user):
    user = imap_user.name
    for n in range(3):
        dovecot.append(user, "INBOX", message("ana@client.example", imap_user.address, f"Q{n}"))
    dovecot.append(user, "Sent", message(imap_user.address, "ana@client.example", "Answer"))

    first = sync_mailbox(mailbox.pk)

    assert (first.status, first.stored, first.folders) == ("synced", 4, {"inbox": 3, "sent": 1})
    directions = dict(BacklogEmail.objects.values_list("subject", "direction"))
    assert directions == {"Q0": "inbound", "Q1": "inbound", "Q2": "inbound", "Answer": "outbound"}
    dovecot.append(user, "INBOX", message("ana@client.example", imap_user.address, "Q3"))
    second = sync_mailbox(mailbox.pk)
    assert (second.stored, BacklogEmail.objects.count()) == (1, 5)
    assert sync_mailbox(mailbox.pk).stored == 0
    mailbox.refresh_from_db()
    assert (mailbox.syncs, mailbox.last_error, mailbox.claim) == (3, "", "")
    assert sorted(mailbox.folders.values_list("role", "last_uid")) == [("inbox", 4), ("sent", 1)]


def test_read_flags_are_left_as_the_user_had_them(mailbox, dovecot, imap_user):
    unread = dovecot.append(imap_user.name, "INBOX", message("a@client.example", "me@x.test"))
    read = dovecot.append(
        imap_user.name, "INBOX", message("b@client.example", "me@x.test"), flags=[b"\\Seen"]
    )

    assert sync_mailbox(mailbox.pk).stored == 2

    assert "\\Seen" not in dovecot.flags(imap_user.name, "INBOX", unread)
    assert "\\Seen" in dovecot.flags(imap_user.name, "INBOX", read)


def test_each_email_is_one_row_with_where_it_was_seen_and_its_addresses(
    mailbox,
    dovecot,
    imap_user,
):
    raw = message("Ana <Ana@Client.Example>", f"{imap_user.address}, bob@client.example")
    dovecot.append(imap_user.name, "INBOX", raw)
    dovecot.append(imap_user.name, "INBOX", raw)  # the same email delivered twice
    sync_mailbox(mailbox.pk)

    email = BacklogEmail.objects.get()
    assert (email.from_name, email.from_address) == ("Ana", "ana@client.example")
    assert sorted(EmailAddress.objects.values_list("address", "role")) == sorted(
        [
            ("ana@client.example", "from"),
            (imap_user.address.lower(), "to"),
            ("bob@client.example", "to"),
        ]
    )
    assert MailboxCopy.objects.filter(email=email, mailbox=mailbox, folder="inbox").count() == 1


def test_crm_sent_mail_is_one_row_whether_seen_in_the_outbox_or_the_sent_folder(
    mailbox,
    dovecot,
    imap_user,
):
    now = timezone.now()
    outbox.queue(
        [
            outbox.Email(
                key="hello-1",
                to=["lead@client.example"],
                subject="Our offer",
                text_body="Hello",
                source="test",
                from_email=imap_user.address,
            )
        ],
        now,
    )
    outbox.deliver(outbox.claim(now, 10), now)
    sent = OutboxMessage.objects.get(key="hello-1")
    from_the_outbox = BacklogEmail.objects.get()
    assert (from_the_outbox.sent_from_crm, from_the_outbox.outbox_id) == (True, sent.pk)

    # The provider keeps a copy in the Sent folder: the very message that left.
    dovecot.append(imap_user.name, "Sent", mail.outbox[-1].message().as_bytes())
    assert sync_mailbox(mailbox.pk).stored == 0

    email = BacklogEmail.objects.get()
    assert email.pk == from_the_outbox.pk
    assert list(email.copies.values_list("folder", flat=True)) == ["sent"]


def test_a_forged_outbox_header_does_not_tag_mail_as_ours(mailbox, dovecot, imap_user):
    now = timezone.now()
    outbox.queue(
        [outbox.Email(key="real", to=["x@client.example"], subject="S", text_body="B", source="t")],
        now,
    )
    forged = message("spoof@evil.example", imap_user.address, headers={"X-Vigil-Outbox": "real"})
    dovecot.append(imap_user.name, "INBOX", forged)

    sync_mailbox(mailbox.pk)

    email = BacklogEmail.objects.get(from_address="spoof@evil.example")
    assert (email.sent_from_crm, email.outbox_id, email.direction) == (False, None, "inbound")


def test_a_uidvalidity_change_resyncs_without_a_duplicate(mailbox, dovecot, imap_user):
    for n in range(3):
        dovecot.append(imap_user.name, "INBOX", message("a@client.example", "me@x.test", f"{n}"))
    sync_mailbox(mailbox.pk)
    before = mailbox.folders.get(role="inbox").uidvalidity

    dovecot.reset_uidvalidity(imap_user.name, "INBOX")
    dovecot.append(imap_user.name, "INBOX", message("a@client.example", "me@x.test", "new"))
    outcome = sync_mailbox(mailbox.pk)

    folder = mailbox.folders.get(role="inbox")
    assert folder.uidvalidity != before
    assert outcome.stored == 1
    assert BacklogEmail.objects.count() == 4
    assert set(MailboxCopy.objects.values_list("uidvalidity", flat=True)) == {folder.uidvalidity}


def google_mailbox(owner, dovecot, imap_user, provider):
    """A mailbox connected through the test provider, with a live access token."""
    access, refresh = provider.issue_tokens(imap_user.address)
    mailbox = imap_mailbox(
        owner,
        dovecot,
        imap_user,
        provider=Mailbox.Provider.GOOGLE,
        auth=Mailbox.Auth.OAUTH2,
        secret=crypto.encrypt(refresh),
        access_token=crypto.encrypt(access),
        access_token_expires_at=timezone.now() + timedelta(hours=1),
    )
    return mailbox, access


def test_an_expired_access_token_is_refreshed(rep, dovecot, imap_user, google):
    oauth_provider = google
    mailbox, access = google_mailbox(rep, dovecot, imap_user, google)
    dovecot.append(imap_user.name, "INBOX", message("a@client.example", imap_user.address))
    oauth_provider.expire_access_tokens()
    refreshes = oauth_provider.refresh_count

    assert sync_mailbox(mailbox.pk).status == "synced"

    assert oauth_provider.refresh_count == refreshes + 1
    assert BacklogEmail.objects.count() == 1
    mailbox.refresh_from_db()
    assert crypto.decrypt(bytes(mailbox.access_token)) != access


def test_a_revoked_grant_marks_the_mailbox_and_tells_its_owner_once(
    rep,
    dovecot,
    imap_user,
    google,
    django_capture_on_commit_callbacks,
):
    oauth_provider = google
    mailbox, _ = google_mailbox(rep, dovecot, imap_user, google)
    oauth_provider.revoke(imap_user.address)

    assert sync_mailbox(mailbox.pk).status == "reconnect"

    mailbox.refresh_from_db()
    assert mailbox.status == Mailbox.Status.RECONNECT
    notice = Notification.objects.get(user=rep)
    assert "Reconnect" in notice.title and notice.link
    # Not retried: the job no longer queues it, and a stray task finds nothing to do.
    with django_capture_on_commit_callbacks(execute=False):
        run = run_job("mailsync_fetch", timezone.now() + timedelta(minutes=10))
    assert run.counts == {"queued": 0}
    assert sync_mailbox(mailbox.pk).status == "skipped"
    assert Notification.objects.filter(user=rep).count() == 1


# SQLite's in-memory test database (shared cache) refuses a second writer at once ("table is
# locked") instead of waiting; the claim is the same UPDATE there.
@pytest.mark.skipif(connection.vendor == "sqlite", reason="concurrent writers are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_sync_a_mailbox_once(rep, dovecot, imap_user):
    mailbox = imap_mailbox(rep, dovecot, imap_user)
    for n in range(20):
        dovecot.append(imap_user.name, "INBOX", message("a@client.example", "me@x.test", f"{n}"))

    outcomes = at_once(sync_mailbox, mailbox.pk)

    assert sorted(o.status for o in outcomes) == ["skipped", "synced"]
    assert BacklogEmail.objects.count() == 20
    assert Mailbox.objects.get(pk=mailbox.pk).syncs == 1


def test_one_failing_mailbox_is_recorded_and_the_others_sync(rep, dovecot, imap_user):
    healthy = imap_mailbox(rep, dovecot, imap_user)
    dovecot.append(imap_user.name, "INBOX", message("a@client.example", "me@x.test"))
    broken = imap_mailbox(rep, dovecot, imap_user, address="other@x.test", imap_port=free_port())
    wrong_password = imap_mailbox(
        rep, dovecot, imap_user, address="third@x.test", secret=crypto.encrypt("wrong")
    )

    outcomes = [sync_mailbox(m.pk).status for m in (broken, healthy, wrong_password)]

    assert outcomes == ["failed", "synced", "reconnect"]
    broken.refresh_from_db()
    assert broken.attempts == 1 and broken.last_error
    assert broken.next_sync_at > timezone.now()
    assert BacklogEmail.objects.count() == 1


def test_the_job_queues_each_due_mailbox_once(
    rep, dovecot, imap_user, django_capture_on_commit_callbacks
):
    due = imap_mailbox(rep, dovecot, imap_user)
    imap_mailbox(
        rep,
        dovecot,
        imap_user,
        address="later@x.test",
        next_sync_at=timezone.now() + timedelta(hours=1),
    )
    now = timezone.now()

    with django_capture_on_commit_callbacks() as callbacks:
        first = run_job("mailsync_fetch", now)
    again = run_job("mailsync_fetch", now + timedelta(minutes=1))

    assert (first.counts, again.counts, len(callbacks)) == ({"queued": 1}, {"queued": 0}, 1)
    due.refresh_from_db()
    assert due.queued_at == now
    # The task queued for that run syncs it; a duplicate delivery of it finds it done.
    assert sync_mailbox(due.pk, now).status == "synced"
    assert sync_mailbox(due.pk, now).status == "skipped"


def test_the_job_costs_the_same_queries_for_one_or_fifty_mailboxes(
    rep,
    dovecot,
    imap_user,
    django_assert_max_num_queries,
    django_capture_on_commit_callbacks,
):
    def queries_for(count, at):
        for n in range(count):
            imap_mailbox(rep, dovecot, imap_user, address=f"m{at.minute}.{n}@x.test")
        with django_capture_on_commit_callbacks(), django_assert_max_num_queries(20) as ctx:
            run_job("mailsync_fetch", at)
        return len(ctx.captured_queries)

    now = timezone.now() + timedelta(minutes=1)
    assert queries_for(1, now) == queries_for(50, now + timedelta(minutes=10))


def test_a_user_sees_only_mail_of_mailboxes_they_may_see(client, rep, manager, dovecot, imap_user):
    mailbox = imap_mailbox(rep, dovecot, imap_user)
    dovecot.append(imap_user.name, "INBOX", message("a@client.example", "me@x.test", "Private"))
    sync_mailbox(mailbox.pk)
    email = BacklogEmail.objects.get()
    colleague = UserFactory(role="rep", team=rep.team)
    other_manager = UserFactory(role="manager", team=TeamFactory(name="South"))
    url = f"/mail/emails/{email.pk}/"

    for user, status in ((rep, 200), (colleague, 404), (manager, 200), (other_manager, 404)):
        client.force_login(user)
        assert client.get(url).status_code == status, user


def test_a_mailbox_on_a_private_network_is_not_contacted(mailbox, settings):
    settings.VIGIL_MAILSYNC_PRIVATE_HOSTS = False

    outcome = sync_mailbox(mailbox.pk)

    mailbox.refresh_from_db()
    assert (outcome.status, mailbox.syncs) == ("failed", 0)
    assert "private network" in mailbox.last_error


def test_a_sync_logs_no_password_or_token(rep, dovecot, imap_user, google, caplog):
    caplog.set_level(logging.DEBUG)
    password_box = imap_mailbox(rep, dovecot, imap_user, address="second@x.test")
    oauth_box, access = google_mailbox(rep, dovecot, imap_user, google)
    google.expire_access_tokens()  # the sync refreshes: a new access token goes by too

    assert [sync_mailbox(m.pk).status for m in (password_box, oauth_box)] == ["synced"] * 2

    oauth_box.refresh_from_db()
    secrets = [imap_user.password, access, crypto.decrypt(bytes(oauth_box.access_token))]
    secrets.append(crypto.decrypt(bytes(oauth_box.secret)))
    assert caplog.records
    for secret in secrets:
        assert secret not in caplog.text
