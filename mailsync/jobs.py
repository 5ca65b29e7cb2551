from datetime import datetime

from crm.progress import progress
from crm.registry import Counts, job
from mailsync import outbox, suppression
from mailsync.models import OutboxMessage

BATCH = 100


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
