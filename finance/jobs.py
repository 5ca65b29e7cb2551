import logging
from datetime import date, datetime

from django.db import DatabaseError, connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from crm.progress import progress
from crm.registry import Counts, job
from finance import triggers
from finance.models import Invoice
from finance.penalties import accrue_range, corrections_since, work_ranges

log = logging.getLogger(__name__)

RANGE = 100_000  # invoices per unit of work: one transaction
MAX_FAILED = 100  # more failed invoices than this in one run: the fault is not in the invoices


class PenaltyRun:
    """One run's work: ranges of invoices, each committed whole. A range the database refuses
    is split until the invoice at fault stands alone; that invoice is recorded and skipped."""

    def __init__(self, today: date, as_of: datetime) -> None:
        self.today, self.as_of = today, as_of
        self.since = corrections_since(today)
        self.totals = {"invoices": 0, "accrued": 0, "corrected": 0, "data_errors": 0}
        self.failed: dict[int, str] = {}

    def accrue(self, lo: int, hi: int) -> None:
        try:
            with transaction.atomic():
                counts = accrue_range(lo, hi, self.today, self.as_of, self.since)
        except DatabaseError as exc:
            if lo < hi:
                middle = (lo + hi) // 2
                self.accrue(lo, middle)
                self.accrue(middle + 1, hi)
            elif Invoice.objects.filter(pk=lo).exists() and len(self.failed) < MAX_FAILED:
                self.failed[lo] = f"{self.today}: {exc}".strip()[:500]
            else:  # not one invoice's fault: fail the run, as any other fault would
                raise
        else:
            for key, value in counts.items():
                self.totals[key] += value

    def record_failures(self) -> None:
        for pk, error in self.failed.items():
            log.warning("finance_penalties skipped invoice %s: %s", pk, error)
            Invoice.objects.filter(pk=pk).update(penalty_error=error)


@job("finance_penalties", schedule="30 2 * * *", final_effects="charges late interest")
def penalties_accrue(as_of: datetime, *, dry_run: bool = False) -> Counts:
    """Accrue late penalties on every past-due invoice with debt, up to as_of's date."""
    bounds = Invoice.objects.aggregate(lo=Min("pk"), hi=Max("pk"))
    if bounds["lo"] is None:
        return {"invoices": 0, "accrued": 0, "corrected": 0, "data_errors": 0, "failed": 0}
    run = PenaltyRun(timezone.localdate(as_of), as_of)
    starts = work_ranges(bounds["lo"], RANGE, run.today, run.since)
    for lo in progress(starts, total=len(starts), desc="finance_penalties"):
        run.accrue(lo, lo + RANGE - 1)
    run.record_failures()
    triggers.compact(connection)  # the aging rollup's rows of the day, folded
    return {**run.totals, "failed": len(run.failed)}
