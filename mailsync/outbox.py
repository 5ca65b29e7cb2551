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
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.message import make_msgid
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F, Q

from mailsync.models import OutboxMessage

CLAIM_LEASE = timedelta(minutes=10)
CRM_HEADER = "X-Vigil-Outbox"  # marks mail Vigil sent; mailsync tags synced copies by it
MAX_BACKOFF = timedelta(hours=6)


class BadEmail(ValueError):
    """The email cannot be queued as given (bad address, header injection...)."""


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


def _checked(email: Email) -> Email:
    if not email.key:
        raise BadEmail("an outbox email needs an idempotency key")
    if not email.to:
        raise BadEmail(f"email {email.key!r} has no recipient")
    for address in [*email.to, *email.cc, *email.bcc, *email.reply_to]:
        try:
            validate_email(address)
        except ValidationError:
            raise BadEmail(f"email {email.key!r}: {address!r} is not an email address") from None
    for text in [email.subject, *email.headers, *email.headers.values()]:
        if "\n" in text or "\r" in text:
            raise BadEmail(f"email {email.key!r}: a subject or header contains a line break")
    return email


def queue(emails: list[Email], now: datetime) -> int:
    """Queue emails; a key already in the outbox is left as it is. Returns how many were new.
    Call it inside the transaction that makes the emails true."""
    rows = [
        OutboxMessage(
            key=e.key,
            source=e.source,
            from_email=e.from_email or settings.DEFAULT_FROM_EMAIL,
            to=e.to,
            cc=e.cc,
            bcc=e.bcc,
            reply_to=e.reply_to,
            subject=e.subject,
            text_body=e.text_body,
            html_body=e.html_body,
            headers=e.headers,
            message_id=make_msgid(domain=settings.VIGIL_MAIL_DOMAIN),
            next_attempt_at=now,
            created_at=now,
        )
        for e in map(_checked, emails)
    ]
    before = OutboxMessage.objects.filter(key__in=[r.key for r in rows]).count()
    OutboxMessage.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    return OutboxMessage.objects.filter(key__in=[r.key for r in rows]).count() - before


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
    """Send a claimed batch over one connection and record each outcome."""
    sent: list[int] = []
    failures: list[OutboxMessage] = []
    connection = get_connection(fail_silently=False)
    try:
        for msg in batch:
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
    OutboxMessage.objects.filter(pk__in=sent).update(
        status=OutboxMessage.Status.SENT, sent_at=now, claimed_until=None, last_error=""
    )
    OutboxMessage.objects.bulk_update(
        failures, ["status", "next_attempt_at", "claimed_until", "last_error"]
    )
    gave_up = sum(1 for m in failures if m.status == OutboxMessage.Status.FAILED)
    return {"sent": len(sent), "retrying": len(failures) - gave_up, "failed": gave_up}


def _record_failure(msg: OutboxMessage, exc: Exception, now: datetime) -> None:
    msg.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    msg.claimed_until = None
    if is_permanent(exc) or msg.attempts >= settings.VIGIL_OUTBOX_MAX_ATTEMPTS:
        msg.status = OutboxMessage.Status.FAILED
    else:
        msg.status = OutboxMessage.Status.QUEUED
        msg.next_attempt_at = now + backoff(msg.attempts)
