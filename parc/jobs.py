from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from crm.registry import Counts, job
from parc import visits
from parc.models import ParcSettings


@job("parc_generate", schedule="0 5 * * 1", final_effects="emails account managers")
def generate_parc_visits(as_of: datetime, *, dry_run: bool = False) -> Counts:
    """Generate each PARC agreement's due visits: opportunity, inspection and follow-up tasks,
    dispatch to the visiting team; then one summary per account manager."""
    today = timezone.localdate(as_of)
    until = today + timedelta(days=ParcSettings.current().horizon_days)
    due, counts = visits.due(today, until)
    counts |= dict.fromkeys(("visits", "late", "opportunities", "tasks", "dispatches"), 0)
    for batch in visits.batches(due):
        with transaction.atomic():  # a batch's visits and their four records commit together
            for key, value in visits.generate(batch, as_of, today).items():
                counts[key] += value
    with transaction.atomic():  # the summaries and the mark that they were sent, together
        counts.update(visits.summarize(as_of))
    return counts
