"""What other apps may read about invoices, without reaching into finance's tables."""

from django.db.models import QuerySet

from finance.models import Invoice


def unpaid() -> QuerySet[Invoice]:
    """Invoices with an outstanding balance; each has `due_date` (voucher date + terms)."""
    return Invoice.objects.filter(debt__gt=0)
