"""nurture listens to the mailbox sync. Only mail a person wrote is a reply: a lead's reply
stops its sequence; its automatic reply (an out-of-office notice) pauses it; a delivery report
about its address stops it (a permanent failure of an email Vigil sent) or is noted.

Each receiver runs for every stored batch of a sync, inside its transaction: a few set-based
queries per batch, through the enrollments that can change, not the whole lead table.

It listens to leads and accounts being saved too: one moved to another time zone or country
has its send window worked out again (windows.py)."""

from collections.abc import Collection
from datetime import datetime
from typing import Any

from django.db.models.functions import Lower, Trim
from django.db.models.signals import post_save
from django.dispatch import receiver

from crm.models import RPH, Account
from mailsync.models import BacklogEmail, OutboxMessage
from mailsync.signals import inbound_email
from mailsync.suppression import delivery_statuses
from nurture.models import Enrollment, SentStep
from nurture.services import (
    REOPENED_BY_A_REPLY,
    account_moved,
    leads_moved,
    pause_for_auto_replies,
    record_delivery_reports,
    record_reply,
)

Kind = BacklogEmail.Kind
# What a lead's place comes from (nurture.places): a change empties its send windows.
PLACE_OF_LEAD = {"time_zone", "country", "contact"}


@receiver(post_save, sender=RPH)
def rework_windows_of_a_lead(sender, instance: RPH, created: bool, update_fields, **kwargs):
    """A lead given another time zone, country or contact (its form saves only the fields
    that changed): its sequence's next window is worked out again."""
    if not created and (update_fields is None or PLACE_OF_LEAD & set(update_fields)):
        leads_moved([instance.pk])


@receiver(post_save, sender=Account)
def rework_windows_of_an_account(sender, instance: Account, created: bool, update_fields, **kwargs):
    """An account's country is where its contacts' leads without one of their own are."""
    if not created and (update_fields is None or "country" in update_fields):
        account_moved(instance.pk)


@receiver(inbound_email)
def stop_sequences_on_reply(sender, emails: list[Any], **kwargs) -> None:
    """An email a person wrote from an enrolled lead's address, or answering one of the
    emails its sequence sent (whoever writes), is a reply. Mail older than the enrollment is
    not: the first sync of a mailbox brings years of history."""
    written = _latest_by_lead([e for e in emails if e.kind == Kind.PERSON], REOPENED_BY_A_REPLY)
    if not written:
        return
    enrolled = dict(
        Enrollment.objects.filter(rph_id__in=written, status__in=REOPENED_BY_A_REPLY)
        .order_by("rph_id", "enrolled_at")
        .values_list("rph_id", "enrolled_at")
    )
    for rph in RPH.objects.filter(pk__in=[r for r in written if r in enrolled]):
        if _at(written[rph.pk]) > enrolled[rph.pk]:
            record_reply(rph, _at(written[rph.pk]))


@receiver(inbound_email)
def pause_sequences_on_auto_reply(sender, emails: list[Any], **kwargs) -> None:
    """An automatic reply from a lead (or to one of its sequence's emails) pauses the
    sequence; see `pause_for_auto_replies`."""
    automatic = [e for e in emails if e.kind == Kind.AUTO_REPLY]
    written = _latest_by_lead(automatic, {Enrollment.Status.ACTIVE})
    if written:
        pause_for_auto_replies({pk: (_at(e), e.subject) for pk, e in written.items()})


@receiver(inbound_email)
def stop_sequences_on_bounce(sender, emails: list[Any], **kwargs) -> None:
    """A delivery report comes from a mail server, not the lead: it is matched by the
    recipient it reports on and the email it returns; see `record_delivery_reports`."""
    statuses = delivery_statuses([e for e in emails if e.kind == Kind.DELIVERY_REPORT])
    if statuses:
        record_delivery_reports(statuses)


def _at(email: Any) -> datetime:
    return email.date or email.created_at


def _keep_latest(found: dict[Any, Any], key: Any, email: Any) -> None:
    if key not in found or _at(email) > _at(found[key]):
        found[key] = email


def _latest_by_lead(emails: list[Any], statuses: Collection[str]) -> dict[int, Any]:
    """The latest of `emails` about each lead enrolled with one of these statuses: written
    from its address, or answering an email its sequence sent."""
    from_address: dict[str, Any] = {}
    answering: dict[str, Any] = {}
    for email in emails:
        if email.from_address:
            _keep_latest(from_address, email.from_address, email)
        for key in {email.in_reply_to, *email.references} - {""}:
            _keep_latest(answering, key, email)
    found: dict[int, Any] = {}
    for rph_id, email in [*_by_address(from_address, statuses), *_by_thread(answering)]:
        _keep_latest(found, rph_id, email)
    return found


def _by_address(addresses: dict[str, Any], statuses: Collection[str]) -> list[tuple[int, Any]]:
    """The enrolled leads writing from these addresses. Looked up through the enrollments
    that can change, not the whole lead table: this runs for every stored batch."""
    if not addresses:
        return []
    leads = (
        Enrollment.objects.filter(status__in=statuses)
        .annotate(address=Lower(Trim("rph__email")))
        .filter(address__in=addresses)
        .values_list("rph_id", "address")
    )
    return [(pk, addresses[address]) for pk, address in leads]


def _by_thread(answering: dict[str, Any]) -> list[tuple[int, Any]]:
    """The leads whose sequence sent one of the emails answered (by Message-ID)."""
    if not answering:
        return []
    sent = dict(
        OutboxMessage.objects.filter(
            message_id__in=[f"<{key}>" for key in answering], key__startswith="nurture:"
        ).values_list("key", "message_id")
    )
    return [
        (rph_id, answering[sent[key].strip("<>")])
        for key, rph_id in SentStep.objects.filter(outbox_key__in=sent).values_list(
            "outbox_key", "enrollment__rph_id"
        )
    ]
