from datetime import datetime

from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from crm.progress import progress
from crm.registry import Counts, job
from finance.models import Invoice
from finance.penalties import accrue_range

RANGE = 100_000  # invoices per transaction


@job("finance_penalties", schedule="30 2 * * *")
def penalties_accrue(as_of: datetime, *, dry_run: bool = False) -> Counts:
    """Accrue late penalties on every past-due invoice with debt, up to as_of's date."""
    today = timezone.localdate(as_of)
    bounds = Invoice.objects.aggregate(lo=Min("pk"), hi=Max("pk"))
    totals = {"invoices": 0, "accrued": 0, "corrected": 0, "data_errors": 0}
    if bounds["lo"] is None:
        return totals
    starts = range(bounds["lo"], bounds["hi"] + 1, RANGE)
    for lo in progress(starts, total=len(starts), desc="finance_penalties"):
        with transaction.atomic():
            counts = accrue_range(lo, lo + RANGE - 1, today, as_of)
        for key, value in counts.items():
            totals[key] += value
    return totals
