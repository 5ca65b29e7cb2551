"""The outbox: queueing email as rows, and delivering them.

Delivery is at-least-once. A sender claims due rows (skipping rows another sender holds),
sends them, then marks them sent. A sender that dies between sending and marking leaves its
claim to expire, and the message is sent again: recipients may, rarely, get a duplicate, which
they can recognise by its unchanged Message-ID. Nothing is ever silently dropped.
"""

import contextlib
import smtplib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.message import make_msgid
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F, Model, Q

from mailsync import backlog
from mailsync.models import OutboxMessage
from mailsync.suppression import normalise, suppressed

CLAIM_LEASE = timedelta(minutes=10)
CRM_HEADER = "X-Vigil-Outbox"  # marks mail Vigil sent; mailsync tags synced copies by it
MAX_BACKOFF = timedelta(hours=6)


class BadEmail(ValueError):
    """A programming error: the email has no idempotency key."""


@dataclass
class Email:
    key: str
    to: list[str]
    subject: str
    text_body: str
    source: str
    html_body: str = ""
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    from_email: str = ""
    # The record the email is about, if any: who may see it may read the email (backlog).
    about: Model | None = None
    # Not before this instant (an alert held for the recipient's working hours); None: now.
    send_at: datetime | None = None


def _undeliverable(email: Email) -> dict[str, str]:
    """Each address of the email that cannot be used, with the reason."""
    bad = {}
    for address in [*email.to, *email.cc, *email.bcc, *email.reply_to]:
        try:
            validate_email(address)
        except ValidationError:
            bad[address] = "not an email address"
    return bad


def _row(email: Email, now: datetime) -> OutboxMessage:
    """The outbox row for an email. Bad data in one email (an invalid stored address, a header
    with a line break) never raises: it becomes that message's recorded failure, or a note of
    the recipients left out, and every other email of the batch goes as usual."""
    if not email.key:
        raise BadEmail("an outbox email needs an idempotency key")
    dropped = _undeliverable(email)
    kept = {
        name: [a for a in getattr(email, name) if a not in dropped]
        for name in ("to", "cc", "bcc", "reply_to")
    }
    problem = ""
    if any("\n" in text or "\r" in text for item in email.headers.items() for text in item):
        problem = "a header contains a line break"
    elif not (kept["to"] or kept["cc"] or kept["bcc"]):
        problem = "no deliverable recipient"
    left_out = "; ".join(f"{address!r} is {why}" for address, why in dropped.items())
    if problem and left_out:
        problem = f"{problem}: {left_out}"
    return OutboxMessage(
        key=email.key,
        source=email.source,
        from_email=email.from_email or settings.DEFAULT_FROM_EMAIL,
        **kept,
        dropped=dropped,
        # A subject is one line; a line break in data (a task's title) must not refuse it.
        subject=" ".join(email.subject.split())[:998],
        text_body=email.text_body,
        html_body=email.html_body,
        headers=email.headers,
        message_id=make_msgid(domain=settings.VIGIL_MAIL_DOMAIN),
        about_type=ContentType.objects.get_for_model(email.about) if email.about else None,
        about_id=email.about.pk if email.about else None,
        status=OutboxMessage.Status.FAILED if problem else OutboxMessage.Status.QUEUED,
        last_error=problem or (f"Not sent to: {left_out}" if left_out else ""),
        next_attempt_at=max(email.send_at, now) if email.send_at else now,
        created_at=now,
    )


def queue(emails: list[Email], now: datetime) -> int:
    """Queue emails; a key already in the outbox is left as it is. Returns how many were new
    (an undeliverable email is new too: it is in the outbox as failed, saying why).
    Call it inside the transaction that makes the emails true."""
    rows = [_row(e, now) for e in emails]
    withhold_suppressed([r for r in rows if r.status == OutboxMessage.Status.QUEUED])
    keys = [r.key for r in rows]
    before = OutboxMessage.objects.filter(key__in=keys).count()
    OutboxMessage.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    return OutboxMessage.objects.filter(key__in=keys).count() - before


def withhold_suppressed(rows: list[OutboxMessage]) -> list[OutboxMessage]:
    """Take every address on the suppression list out of the rows' recipients (one query),
    noting each in `dropped` with the reason. A row left with no recipient is marked
    suppressed, saying why. Returns the rows it changed (not saved)."""
    listed = suppressed(a for row in rows for a in (*row.to, *row.cc, *row.bcc))
    if not listed:
        return []
    changed = []
    for row in rows:
        hits = {
            a: listed[normalise(a)] for a in (*row.to, *row.cc, *row.bcc) if normalise(a) in listed
        }
        if not hits:
            continue
        row.to, row.cc, row.bcc = (
            [a for a in r if a not in hits] for r in (row.to, row.cc, row.bcc)
        )
        row.dropped = {**row.dropped, **{a: f"suppressed ({why})" for a, why in hits.items()}}
        left_out = "; ".join(f"{address!r} is {why}" for address, why in row.dropped.items())
        if row.to or row.cc or row.bcc:
            row.last_error = f"Not sent to: {left_out}"
        else:
            row.status = OutboxMessage.Status.SUPPRESSED
            row.claimed_until = None
            row.last_error = f"Not sent: every recipient is suppressed: {left_out}"
        changed.append(row)
    return changed


def due(now: datetime) -> Q:
    return Q(status=OutboxMessage.Status.QUEUED, next_attempt_at__lte=now) | Q(
        status=OutboxMessage.Status.SENDING, claimed_until__lt=now
    )


def claim(now: datetime, limit: int) -> list[OutboxMessage]:
    """Take up to `limit` due messages for this sender. Rows locked by a concurrent sender are
    skipped, not waited for, so several senders share the work without sending twice."""
    with transaction.atomic():
        ids = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(due(now))
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        OutboxMessage.objects.filter(pk__in=ids).update(
            status=OutboxMessage.Status.SENDING,
            claimed_until=now + CLAIM_LEASE,
            attempts=F("attempts") + 1,
        )
    return list(OutboxMessage.objects.filter(pk__in=ids).order_by("pk"))


def is_permanent(exc: Exception) -> bool:
    """Would sending the same message again fail the same way?"""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    if isinstance(exc, AnymailRecipientsRefused):
        return True
    if isinstance(exc, AnymailAPIError):
        status = exc.status_code or 0
        return 400 <= status < 500 and status not in (408, 429)
    # A malformed address or header (Django raises ValueError/BadHeaderError) never heals;
    # network trouble (OSError, timeouts) and anything unknown is worth another try.
    return isinstance(exc, ValueError)


def to_email_message(msg: OutboxMessage, connection) -> EmailMultiAlternatives:
    headers = {**msg.headers, "Message-ID": msg.message_id, CRM_HEADER: msg.key}
    email = EmailMultiAlternatives(
        subject=msg.subject,
        body=msg.text_body,
        from_email=msg.from_email,
        to=msg.to,
        cc=msg.cc,
        bcc=msg.bcc,
        reply_to=msg.reply_to,
        headers=headers,
        connection=connection,
    )
    if msg.html_body:
        email.attach_alternative(msg.html_body, "text/html")
    return email


def backoff(attempts: int) -> timedelta:
    delay = timedelta(seconds=settings.VIGIL_OUTBOX_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0))
    return min(delay, MAX_BACKOFF)


def deliver(batch: list[OutboxMessage], now: datetime) -> dict[str, int]:
    """Send a claimed batch over one connection and record each outcome. The suppression list
    is checked here, at send time, so an address suppressed after its email was queued gets
    nothing either."""
    sent: list[int] = []
    failures: list[OutboxMessage] = []
    withheld = withhold_suppressed(batch)
    OutboxMessage.objects.bulk_update(
        withheld, ["to", "cc", "bcc", "dropped", "status", "claimed_until", "last_error"]
    )
    suppressed_now = {m.pk for m in withheld if m.status == OutboxMessage.Status.SUPPRESSED}
    connection = get_connection(fail_silently=False)
    try:
        for msg in (m for m in batch if m.pk not in suppressed_now):
            try:
                to_email_message(msg, connection).send()
            except Exception as exc:  # noqa: BLE001 - recorded on the row; the batch goes on
                _record_failure(msg, exc, now)
                failures.append(msg)
            else:
                sent.append(msg.pk)
    finally:
        # Closing a connection that already broke must not lose the outcomes recorded above.
        with contextlib.suppress(OSError, smtplib.SMTPException):
            connection.close()
    with transaction.atomic():  # marked sent and in the backlog together
        OutboxMessage.objects.filter(pk__in=sent).update(
            status=OutboxMessage.Status.SENT, sent_at=now, claimed_until=None, last_error=""
        )
        done = set(sent)
        backlog.record_sent([m for m in batch if m.pk in done], now)
    OutboxMessage.objects.bulk_update(
        failures, ["status", "next_attempt_at", "claimed_until", "last_error"]
    )
    gave_up = sum(1 for m in failures if m.status == OutboxMessage.Status.FAILED)
    return {
        "sent": len(sent),
        "retrying": len(failures) - gave_up,
        "failed": gave_up,
        "suppressed": len(suppressed_now),
    }


def _record_failure(msg: OutboxMessage, exc: Exception, now: datetime) -> None:
    msg.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    msg.claimed_until = None
    if is_permanent(exc) or msg.attempts >= settings.VIGIL_OUTBOX_MAX_ATTEMPTS:
        msg.status = OutboxMessage.Status.FAILED
    else:
        msg.status = OutboxMessage.Status.QUEUED
        msg.next_attempt_at = now + backoff(msg.attempts)
