"""The suppression list: addresses no email of Vigil may go to, whatever queued it.

Other apps call `suppressed()` before they write an email and put `unsubscribe_headers()` on
marketing mail; the outbox checks the list again when it sends (see `outbox.deliver`).

Addresses come on the list from rejected contacts, the ESP's tracking webhook, unsubscribe
links and requests, staff, and delivery reports the mailbox sync brings in: a permanent
failure (5.x.x) to deliver an email Vigil sent (see `suppress_bounced`).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Case, CharField, DateTimeField, F, QuerySet, Value, When
from django.db.models.functions import Concat, Left, Lower, Trim
from django.dispatch import receiver
from django.urls import reverse

from crm.models import Contact, User
from crm.sql import insert_from_select
from mailsync.models import OutboxMessage, Suppression, SuppressionLift
from mailsync.signals import inbound_email

UNSUBSCRIBE_SALT = "mailsync.unsubscribe"
ADDRESS_LENGTH = 320  # Suppression.address
REASON_LENGTH = 500  # Suppression.reason
# A marketing email may be opened months after it was sent; its link must still work.
TOKEN_MAX_AGE = timedelta(days=400)


class BadToken(ValueError):
    """An unsubscribe token that was tampered with or has expired."""


def normalise(address: str) -> str:
    """The form an address is listed under: trimmed, lower-cased, its domain in ASCII
    (`Ana@Bücher.Example ` → `ana@xn--bcher-kva.example`). Junk comes back trimmed and
    lower-cased rather than raising."""
    cleaned = address.strip().lower()
    local, at, domain = cleaned.rpartition("@")
    if not at or domain.isascii():
        return cleaned
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return cleaned
    return f"{local}@{domain}"


def active() -> QuerySet[Suppression]:
    return Suppression.objects.filter(lifted_at__isnull=True)


def listing(address: str) -> Suppression | None:
    """The active suppression of one address, if it has one."""
    return active().filter(address=normalise(address)).first()


def suppressed(addresses: Iterable[str]) -> dict[str, str]:
    """{normalised address: reason} for those of `addresses` on the list (one query)."""
    wanted = {normalise(a) for a in addresses if a}
    if not wanted:
        return {}
    return dict(active().filter(address__in=wanted).values_list("address", "reason"))


def suppress(address: str, source: str, reason: str, at: datetime) -> bool:
    """Put an address on the list, or back on it if it was lifted. Returns whether it was
    newly suppressed (False if it already was)."""
    address = normalise(address)
    fields = {"source": source, "reason": reason[:500], "created_at": at, "lifted_at": None}
    reactivated = Suppression.objects.filter(address=address, lifted_at__isnull=False).update(
        **fields
    )
    if reactivated:
        return True
    try:
        with transaction.atomic():
            Suppression.objects.create(address=address, **fields)
    except IntegrityError:  # listed already, or concurrently
        return False
    return True


def suppress_all(reasons: dict[str, tuple[str, datetime]], source: str) -> int:
    """Put addresses on the list, each with its reason and the time it became true
    ({address: (reason, at)}), in a bounded number of queries. An address lifted after that
    time stays lifted: mail synced late (a mailbox's first sync brings years of it) must not
    undo an administrator. Returns how many it listed (one another process listed at the
    same moment included)."""
    wanted = {normalise(a): why for a, why in reasons.items() if a}
    wanted = {a: why for a, why in wanted.items() if len(a) <= ADDRESS_LENGTH}
    if not wanted:
        return 0
    listed = {row.address: row for row in Suppression.objects.filter(address__in=wanted)}
    again = [
        row
        for address, row in listed.items()
        if row.lifted_at is not None and row.lifted_at < wanted[address][1]
    ]
    for row in again:
        row.reason, row.created_at = wanted[row.address][0][:500], wanted[row.address][1]
        row.source, row.lifted_at = source, None
    Suppression.objects.bulk_update(again, ["source", "reason", "created_at", "lifted_at"])
    new = [
        Suppression(address=a, source=source, reason=reason[:500], created_at=at)
        for a, (reason, at) in wanted.items()
        if a not in listed
    ]
    created = Suppression.objects.bulk_create(new, ignore_conflicts=True)
    return len(again) + len(created)


@dataclass(frozen=True)
class DeliveryStatus:
    """What a delivery report the mailbox sync brought in says about one recipient."""

    address: str  # normalised
    action: str  # failed, delayed, delivered, relayed, expanded, or ""
    status: str  # "5.1.1", or ""
    diagnostic: str
    at: datetime  # the report's date
    # The outbox message (its key) the report is about, when it names one Vigil sent to this
    # address; "" when it names none, or one that did not go to this address: the rest of a
    # report is whatever its sender wrote.
    outbox_key: str

    @property
    def failed(self) -> bool:
        """A permanent failure: the address will not take mail."""
        return self.action == "failed" and self.status.startswith("5.")

    @property
    def reason(self) -> str:
        detail = f": {self.diagnostic}" if self.diagnostic else ""
        return f"bounced {self.status}{detail}"[:500]


def delivery_statuses(emails: Iterable[Any]) -> list[DeliveryStatus]:
    """The recipients the delivery reports among `emails` (inbound_email's records) name,
    each matched to the outbox message it reports on (one query)."""
    entries = [
        (email, entry)
        for email in emails
        if email.kind == "delivery_report"
        for entry in email.delivery_report
        if isinstance(entry, dict) and entry.get("recipient")
    ]
    if not entries:
        return []
    ids = {f"<{e['original_message_id']}>" for _, e in entries if e.get("original_message_id")}
    sent: dict[str, tuple[str, set[str]]] = {}
    for message_id, key, *recipients in OutboxMessage.objects.filter(
        message_id__in=ids
    ).values_list("message_id", "key", "to", "cc", "bcc"):
        sent[message_id.strip("<>")] = (key, {normalise(a) for r in recipients for a in r})
    return [_delivery_status(email, entry, sent) for email, entry in entries]


def _delivery_status(
    email: Any, entry: dict[str, str], sent: dict[str, tuple[str, set[str]]]
) -> DeliveryStatus:
    address = normalise(str(entry["recipient"]))
    key, recipients = sent.get(str(entry.get("original_message_id", "")), ("", set()))
    return DeliveryStatus(
        address=address,
        action=str(entry.get("action", "")),
        status=str(entry.get("status", "")),
        diagnostic=str(entry.get("diagnostic", "")),
        at=email.date or email.created_at,
        outbox_key=key if address in recipients else "",
    )


@receiver(inbound_email, dispatch_uid="mailsync.suppress_bounced")
def suppress_bounced(sender: Any, emails: list[Any], **kwargs: Any) -> int:
    """Put on the list every address a delivery report says an email Vigil sent could not be
    delivered to, for good (a 5.x.x failure). A report that names no email of ours, or one
    that did not go to that address, changes nothing: anyone can write a report."""
    failed: dict[str, tuple[str, datetime]] = {}
    for status in delivery_statuses(emails):
        if not (status.failed and status.outbox_key):
            continue
        if status.address not in failed or status.at > failed[status.address][1]:
            failed[status.address] = (status.reason, status.at)
    return suppress_all(failed, Suppression.Source.BOUNCE)


def lift(suppressions: QuerySet[Suppression], by: User, why: str, at: datetime) -> int:
    """Lift the active suppressions among `suppressions`, with an audit entry each."""
    with transaction.atomic():
        rows = list(suppressions.filter(lifted_at__isnull=True).select_for_update())
        SuppressionLift.objects.bulk_create(
            SuppressionLift(
                suppression=row,
                address=row.address,
                previous_source=row.source,
                previous_reason=row.reason,
                lifted_by=by,
                lifted_at=at,
                why=why,
            )
            for row in rows
        )
        Suppression.objects.filter(pk__in=[r.pk for r in rows]).update(lifted_at=at)
    return len(rows)


def _rejected_contacts() -> QuerySet[Contact]:
    return Contact.objects.filter(status=Contact.Status.REJECTED).exclude(email="")


def rejected_reason(name: str, status_reason: str) -> str:
    """The reason a rejected contact's address is listed under: the contact's own reason for
    the rejection when it has one."""
    said = f": {status_reason}" if status_reason else ""
    return f"Contact “{name}” is rejected{said}"[:REASON_LENGTH]


def add_rejected_contacts(as_of: datetime) -> dict[str, int]:
    """List every rejected contact's address, with the reason the contact was rejected for
    (rejected_reason); one INSERT … SELECT … ON CONFLICT DO NOTHING.

    SQL lower-cases and trims, but cannot write a domain in punycode, so addresses with a
    character outside ASCII are left to a second pass in Python over those rows only (they are
    few, and found through the same index on status)."""
    # "Contact “Rosa” is rejected: asked us to stop", the reason cut to the column's length.
    said = Case(
        When(status_reason="", then=Value("")),
        default=Concat(Value(": "), F("status_reason"), output_field=CharField()),
        output_field=CharField(),
    )
    reason = Left(
        Concat(
            Value("Contact “"), F("name"), Value("” is rejected"), said, output_field=CharField()
        ),
        REASON_LENGTH,
    )
    listed = insert_from_select(
        Suppression,
        {
            "address": Lower(Trim("email")),
            "source": Value(Suppression.Source.REJECTED),
            "reason": reason,
            "created_at": Value(as_of, output_field=DateTimeField()),
        },
        _rejected_contacts().filter(email__regex=r"^[\x01-\x7f]*$").exclude(email__regex=r"^\s*$"),
    )
    non_ascii = _rejected_contacts().exclude(email__regex=r"^[\x01-\x7f]*$")
    rows = [
        Suppression(
            address=normalise(email),
            source=Suppression.Source.REJECTED,
            reason=rejected_reason(name, status_reason),
            created_at=as_of,
        )
        for email, name, status_reason in non_ascii.values_list(
            "email", "name", "status_reason"
        ).iterator(chunk_size=2000)
    ]
    before = Suppression.objects.count() if rows else 0
    Suppression.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    idn = Suppression.objects.count() - before if rows else 0
    return {"listed": listed + idn, "non_ascii": len(rows)}


def unsubscribe_token(address: str) -> str:
    return signing.dumps(normalise(address), salt=UNSUBSCRIBE_SALT)


def address_of(token: str) -> str:
    """The address a token was made for. Raises BadToken if it was altered or is too old."""
    try:
        address = signing.loads(token, salt=UNSUBSCRIBE_SALT, max_age=TOKEN_MAX_AGE)
    except signing.BadSignature as exc:  # SignatureExpired is a BadSignature
        raise BadToken(str(exc)) from None
    if not isinstance(address, str):
        raise BadToken("not an address")
    return address


def unsubscribe_url(address: str) -> str:
    path = reverse("mailsync:unsubscribe", args=[unsubscribe_token(address)])
    return f"{settings.VIGIL_SITE_URL}{path}"


def unsubscribe_headers(address: str) -> dict[str, str]:
    """RFC 2369 / RFC 8058 headers for one recipient of a marketing email."""
    token = unsubscribe_token(address)
    path = reverse("mailsync:unsubscribe", args=[token])
    subject = quote(f"unsubscribe {token}")
    mailto = f"mailto:unsubscribe@{settings.VIGIL_MAIL_DOMAIN}?subject={subject}"
    return {
        "List-Unsubscribe": f"<{settings.VIGIL_SITE_URL}{path}>, <{mailto}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def unsubscribe_by_mail(sender, emails, **kwargs) -> int:
    """Act on `mailto:unsubscribe@VIGIL_MAIL_DOMAIN?subject=unsubscribe TOKEN` requests that
    the mailbox sync brought in (the mailbox of that address must be connected). The signed
    token names the address, whoever sends the request: a forged subject changes nothing."""
    inbox = f"unsubscribe@{settings.VIGIL_MAIL_DOMAIN}".lower()
    done = 0
    for email in emails:
        words = email.subject.split()
        if inbox not in email.to + email.cc or len(words) != 2 or words[0].lower() != "unsubscribe":
            continue
        try:
            address = address_of(words[1])
        except BadToken:
            continue
        at = email.date or email.created_at
        done += suppress(address, Suppression.Source.UNSUBSCRIBE, "unsubscribed by email", at)
    return done
