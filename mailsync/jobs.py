from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from crm.progress import progress
from crm.registry import Counts, job
from mailsync import outbox, suppression
from mailsync.models import Mailbox, OutboxMessage

BATCH = 100
STALE_QUEUE = timedelta(minutes=30)


@job("outbox_send", schedule="* * * * *", final_effects="sends email")
def send_outbox(as_of: datetime, *, dry_run: bool = False) -> Counts:
    """Deliver every outbox email due at as_of, retrying transient failures with backoff."""
    if dry_run:
        return {"due": OutboxMessage.objects.filter(outbox.due(as_of)).count()}
    totals = {"sent": 0, "retrying": 0, "failed": 0, "suppressed": 0}
    batches = iter(lambda: outbox.claim(as_of, BATCH), [])
    for batch in progress(batches, desc="outbox_send"):
        for key, value in outbox.deliver(batch, as_of).items():
            totals[key] += value
    return totals


@job("suppression_build", schedule="15 1 * * *")
def suppression_build(as_of: datetime, *, dry_run: bool = False) -> Counts:
    """Put every rejected contact's address on the suppression list (lifting stays manual)."""
    return suppression.add_rejected_contacts(as_of)


@job("mailsync_fetch", schedule="*/5 * * * *")
def mailsync_fetch(as_of: datetime, *, dry_run: bool = False) -> Counts:
    """Queue one sync task per connected mailbox that is due (its workers do the IMAP work).
    A mailbox queued before and not picked up within STALE_QUEUE (its task was lost with a
    broker) is queued again; one queued more recently is left to its task."""
    due = Mailbox.objects.filter(status=Mailbox.Status.ACTIVE, next_sync_at__lte=as_of).filter(
        Q(queued_at__isnull=True) | Q(queued_at__lt=as_of - STALE_QUEUE)
    )
    if dry_run:
        return {"due": due.count()}
    interval = timedelta(minutes=settings.VIGIL_MAILSYNC_INTERVAL_MINUTES)
    with transaction.atomic():
        ids = list(due.select_for_update(skip_locked=True).values_list("pk", flat=True))
        Mailbox.objects.filter(pk__in=ids).update(queued_at=as_of, next_sync_at=as_of + interval)
        transaction.on_commit(lambda: _send(ids, as_of))
    return {"queued": len(ids)}


def _send(ids: list[int], as_of: datetime) -> None:
    from mailsync.tasks import sync_mailbox

    for mailbox_id in ids:
        sync_mailbox.delay(mailbox_id, as_of.isoformat())
