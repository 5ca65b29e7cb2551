"""nurture listens to the mailbox sync: a lead's reply stops its sequence."""

from datetime import datetime
from typing import Any

from django.db.models.functions import Lower, Trim
from django.dispatch import receiver

from crm.models import RPH
from mailsync.models import OutboxMessage
from mailsync.signals import inbound_email
from nurture.models import Enrollment, SentStep
from nurture.services import REOPENED_BY_A_REPLY, record_reply


@receiver(inbound_email)
def stop_sequences_on_reply(sender, emails: list[Any], **kwargs) -> None:
    """An inbound email from an enrolled lead's address, or answering one of the emails its
    sequence sent (whoever writes), is a reply. Mail older than the enrollment is not: the
    first sync of a mailbox brings years of history."""
    from_address: dict[str, datetime] = {}
    answering: dict[str, datetime] = {}
    for email in emails:
        at = email.date or email.created_at
        if email.from_address:
            from_address[email.from_address] = max(at, from_address.get(email.from_address, at))
        for key in {email.in_reply_to, *email.references} - {""}:
            answering[key] = max(at, answering.get(key, at))
    replies = _by_address(from_address)
    for rph_id, at in _by_thread(answering).items():
        replies[rph_id] = max(at, replies.get(rph_id, at))
    if not replies:
        return
    enrolled = dict(
        Enrollment.objects.filter(rph_id__in=replies, status__in=REOPENED_BY_A_REPLY)
        .order_by("rph_id", "enrolled_at")
        .values_list("rph_id", "enrolled_at")
    )
    for rph in RPH.objects.filter(pk__in=[r for r in replies if r in enrolled]):
        if replies[rph.pk] > enrolled[rph.pk]:
            record_reply(rph, replies[rph.pk])


def _by_address(addresses: dict[str, datetime]) -> dict[int, datetime]:
    """The enrolled leads writing from these addresses. Looked up through the enrollments a
    reply can stop, not the whole lead table: this runs for every stored batch."""
    if not addresses:
        return {}
    leads = (
        Enrollment.objects.filter(status__in=REOPENED_BY_A_REPLY)
        .annotate(address=Lower(Trim("rph__email")))
        .filter(address__in=addresses)
        .values_list("rph_id", "address")
    )
    return {pk: addresses[address] for pk, address in leads}


def _by_thread(answering: dict[str, datetime]) -> dict[int, datetime]:
    """The leads whose sequence sent one of the emails answered (by Message-ID)."""
    if not answering:
        return {}
    sent = dict(
        OutboxMessage.objects.filter(
            message_id__in=[f"<{key}>" for key in answering], key__startswith="nurture:"
        ).values_list("key", "message_id")
    )
    leads: dict[int, datetime] = {}
    for key, rph_id in SentStep.objects.filter(outbox_key__in=sent).values_list(
        "outbox_key", "enrollment__rph_id"
    ):
        at = answering[sent[key].strip("<>")]
        leads[rph_id] = max(at, leads.get(rph_id, at))
    return leads
