from collections import Counter
from datetime import datetime

from django.db import transaction

from crm.registry import Counts, job
from nurture import caps, sending, windows

# Often enough for send windows in every zone to open on time; without a window, each run
# works as of the day's 08:00 (windows.due), so steps still go out at 08:00 company time.
SCHEDULE = "*/15 * * * *"


@job("nurture_send", schedule=SCHEDULE, final_effects="emails leads")
def nurture_send(as_of: datetime, *, dry_run: bool = False) -> Counts:
    """Send each lead in Nurture P2 its due step (one a day at most, inside its send window
    when there is one), and close the leads whose last wait passed without a reply."""
    # A dry run is already inside the engine's transaction, which it rolls back.
    return send_due(as_of, durable=not dry_run)


def send_due(as_of: datetime, *, durable: bool = True) -> Counts:
    """The run itself. Each batch commits on its own (durable), so its emails and steps are
    never part of a larger transaction that could still roll back; the demo, seeding inside
    one transaction, passes durable=False. The settings are read again for each batch."""
    counts = Counter(dict.fromkeys(("sent", "skipped", "failed", "closed"), 0))
    counts["enrolled"] = sending.enrol_missing(as_of)
    rules, windowing = windows.load()
    if windowing:  # counts of a window or a cap only when there is one
        counts["windowed"] = windows.schedule_windows(as_of, durable=durable)
    if rules.capped:
        counts["held"] = 0
        caps.forget_old(as_of)
    while True:
        with transaction.atomic(durable=durable):
            rules, windowing = windows.load(lock=True)  # before the rows, as the settings' save
            batch = sending.claim(as_of, sending.BATCH, windowed=windowing is not None)
            if not batch:
                break
            done = sending.process(batch, as_of, rules, windowing)
        # A step a cap held moves to a later hour (send_after), out of what this run claims:
        # the loop goes on to the other domains' steps and ends when none is left.
        counts.update(done)
    return dict(counts)
