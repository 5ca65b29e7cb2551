from collections import Counter
from datetime import datetime

from django.db import transaction

from crm.registry import Counts, job
from nurture import sending


@job("nurture_send", schedule="0 8 * * *", final_effects="emails leads")
def nurture_send(as_of: datetime, *, dry_run: bool = False) -> Counts:
    """Send each lead in Nurture P2 its due step (one a day at most), and close the leads whose
    last wait passed without a reply."""
    # A dry run is already inside the engine's transaction, which it rolls back.
    return send_due(as_of, durable=not dry_run)


def send_due(as_of: datetime, *, durable: bool = True) -> Counts:
    """The run itself. Each batch commits on its own (durable), so its emails and steps are
    never part of a larger transaction that could still roll back; the demo, seeding inside
    one transaction, passes durable=False."""
    counts = Counter(dict.fromkeys(("sent", "skipped", "failed", "closed"), 0))
    counts["enrolled"] = sending.enrol_missing(as_of)
    while True:
        with transaction.atomic(durable=durable):
            batch = sending.claim(as_of, sending.BATCH)
            if not batch:
                break
            counts.update(sending.process(batch, as_of))
    return dict(counts)
