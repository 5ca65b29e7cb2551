"""The outbox: one place every email leaves from; idempotent, claimed safely, retried with
backoff, delivered over real SMTP."""

import threading
from datetime import UTC, datetime, timedelta
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from django.db import connection, connections

from crm import runner
from mailsync import outbox
from mailsync.backends import EmlDirectoryBackend
from mailsync.models import OutboxMessage
from tests.mailsync.smtp import Recorder, free_port

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def email(key="welcome:1", to=("rita@client.example",), subject="Welcome", **extra):
    return outbox.Email(
        key=key, to=list(to), subject=subject, text_body="Hello", source="test", **extra
    )


@pytest.mark.django_db
def test_queueing_the_same_key_twice_queues_one_email():
    assert outbox.queue([email(), email(key="welcome:2")], T0) == 2
    changed = email()
    changed.subject = "Welcome again"

    assert outbox.queue([changed], T0 + timedelta(days=1)) == 0
    assert OutboxMessage.objects.count() == 2
    assert OutboxMessage.objects.get(key="welcome:1").subject == "Welcome"


@pytest.mark.django_db
def test_a_re_run_of_a_sent_key_does_not_send_again(smtp_server):
    outbox.queue([email()], T0)
    runner.run_job("outbox_send", T0)
    outbox.queue([email()], T0 + timedelta(hours=1))
    runner.run_job("outbox_send", T0 + timedelta(hours=1))

    assert len(smtp_server.received) == 1


@pytest.mark.django_db
def test_sent_mail_carries_our_message_id_and_the_crm_header(smtp_server, settings):
    outbox.queue([email(html_body="<p>Hello</p>", cc=["boss@client.example"])], T0)

    run = runner.run_job("outbox_send", T0)

    assert run.counts == {"sent": 1, "retrying": 0, "failed": 0, "suppressed": 0}
    [received] = smtp_server.received
    row = OutboxMessage.objects.get()
    assert received["Message-ID"] == row.message_id
    assert row.message_id.endswith(f"@{settings.VIGIL_MAIL_DOMAIN}>")
    assert received[outbox.CRM_HEADER] == "welcome:1"
    assert received["Cc"] == "boss@client.example"
    assert received.is_multipart()  # text and HTML alternatives
    assert (row.status, row.sent_at, row.attempts) == ("sent", T0, 1)


@pytest.mark.django_db
def test_a_transient_failure_retries_with_backoff_until_it_is_delivered(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens
    settings.VIGIL_OUTBOX_BACKOFF_SECONDS = 60
    outbox.queue([email()], T0)

    first = runner.run_job("outbox_send", T0)
    row = OutboxMessage.objects.get()
    assert first.counts == {"sent": 0, "retrying": 1, "failed": 0, "suppressed": 0}
    assert (row.status, row.attempts, row.next_attempt_at) == (
        "queued",
        1,
        T0 + timedelta(minutes=1),
    )
    assert "Connection refused" in row.last_error

    runner.run_job("outbox_send", T0 + timedelta(seconds=59))  # too early: not attempted
    row.refresh_from_db()
    assert row.attempts == 1

    runner.run_job("outbox_send", T0 + timedelta(minutes=1))  # second failure: wait doubles
    row.refresh_from_db()
    assert (row.attempts, row.next_attempt_at) == (2, T0 + timedelta(minutes=3))

    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=settings.EMAIL_PORT)
    controller.start()
    try:
        last = runner.run_job("outbox_send", T0 + timedelta(minutes=3))
    finally:
        controller.stop()
    row.refresh_from_db()
    assert last.counts["sent"] == 1 and len(recorder.received) == 1
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, "")


@pytest.mark.django_db
def test_transient_smtp_refusal_retries_and_permanent_refusal_gives_up(smtp_server):
    outbox.queue(
        [email("a", to=["busy@client.example"]), email("b", to=["nobody@client.example"])], T0
    )

    run = runner.run_job("outbox_send", T0)

    assert run.counts == {"sent": 0, "retrying": 1, "failed": 1, "suppressed": 0}
    busy, nobody = OutboxMessage.objects.order_by("key")
    assert busy.status == "queued" and "451" in busy.last_error
    assert nobody.status == "failed" and "550" in nobody.last_error


@pytest.mark.django_db
def test_it_gives_up_after_the_attempt_limit(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    settings.VIGIL_OUTBOX_MAX_ATTEMPTS = 2
    outbox.queue([email()], T0)

    runner.run_job("outbox_send", T0)
    runner.run_job("outbox_send", T0 + timedelta(hours=1))

    row = OutboxMessage.objects.get()
    assert (row.status, row.attempts) == ("failed", 2)


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SKIP LOCKED and concurrent writers are PostgreSQL's"
)
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_senders_never_claim_the_same_message():
    outbox.queue([email(f"bulk:{n}") for n in range(40)], T0)
    barrier, claimed = threading.Barrier(2), {}

    def sender(label):
        try:
            barrier.wait(10)
            claimed[label] = [m.pk for m in outbox.claim(T0, 25)]
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sender, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert not set(claimed[1]) & set(claimed[2])
    assert len(claimed[1]) + len(claimed[2]) == 40
    assert OutboxMessage.objects.filter(status="sending").count() == 40


@pytest.mark.django_db
def test_a_claim_abandoned_by_a_dead_sender_is_picked_up_again():
    outbox.queue([email()], T0)
    [stuck] = outbox.claim(T0, 10)  # the sender dies here, before sending

    assert outbox.claim(T0 + timedelta(minutes=5), 10) == []
    [again] = outbox.claim(T0 + outbox.CLAIM_LEASE + timedelta(seconds=1), 10)
    assert again.pk == stuck.pk and again.attempts == 2


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (email(to=["not-an-address"]), "no deliverable recipient: 'not-an-address' is not"),
        (email(to=[]), "no deliverable recipient"),
        (email(headers={"X-Note": "a\nBcc: victim@example.com"}), "a header contains a line"),
    ],
)
@pytest.mark.django_db
def test_a_bad_email_is_recorded_as_failed_and_the_others_are_queued(bad, reason, client):
    assert outbox.queue([email("good"), bad], T0) == 2

    good, failed = OutboxMessage.objects.order_by("pk")
    assert good.status == OutboxMessage.Status.QUEUED
    assert failed.status == OutboxMessage.Status.FAILED and failed.last_error.startswith(reason)
    assert outbox.claim(T0, 10) == [good]
    assert client.get("/health").json()["undeliverable_emails"] == 1


@pytest.mark.django_db
def test_a_bad_address_among_good_ones_is_left_out_and_noted(admin_client):
    outbox.queue([email("mixed", to=["ok@example.com", "no way"], cc=["@broken"])], T0)

    message = OutboxMessage.objects.get()
    assert message.status == OutboxMessage.Status.QUEUED
    assert (message.to, message.cc) == (["ok@example.com"], [])
    assert message.dropped == {"no way": "not an email address", "@broken": "not an email address"}
    page = admin_client.get("/admin/mailsync/outboxmessage/").content.decode()
    assert "Not sent to: &#x27;no way&#x27; is not an email address" in page


@pytest.mark.django_db
def test_a_line_break_in_a_subject_is_folded_not_refused():
    outbox.queue([email("title", subject="Task “Call\r\nBcc: x@evil.example” is late")], T0)

    assert OutboxMessage.objects.get().subject == "Task “Call Bcc: x@evil.example” is late"


def test_an_email_without_idempotency_key_is_a_programming_error():
    with pytest.raises(outbox.BadEmail, match="needs an idempotency key"):
        outbox.queue([email(key="")], T0)


@pytest.mark.django_db
def test_dry_run_counts_what_is_due_and_sends_nothing(smtp_server):
    outbox.queue([email("a"), email("b")], T0)

    run = runner.run_job("outbox_send", T0, dry_run=True)

    assert run.counts == {"due": 2}
    assert smtp_server.received == []
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"queued"}


def test_the_embedded_backend_writes_one_readable_eml_per_message(tmp_path):
    from django.core.mail import EmailMessage

    backend = EmlDirectoryBackend(file_path=tmp_path)
    sent = backend.send_messages(
        [
            EmailMessage(
                "Hi",
                "Body",
                "vigil@vigil.example",
                ["a@client.example"],
                headers={"Message-ID": "<1@vigil.example>"},
            )
        ]
    )

    [eml] = tmp_path.glob("*.eml")
    parsed = message_from_bytes(eml.read_bytes())
    assert sent == 1 and parsed["Subject"] == "Hi" and parsed["Message-ID"] == "<1@vigil.example>"
    assert not list(tmp_path.glob("*.part"))
