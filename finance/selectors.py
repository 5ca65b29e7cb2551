"""What other apps may read about invoices, without reaching into finance's tables."""

from django.db.models import Case, QuerySet, Value, When

from finance.models import Invoice


def unpaid() -> QuerySet[Invoice]:
    """Invoices with an outstanding balance; each has `due_date` (voucher date + terms)."""
    return Invoice.objects.filter(debt__gt=0)


def of_account(account) -> QuerySet[Invoice]:
    """An account's invoices: those still owed first; then the longest overdue, the earliest
    due. Each has `penalty` (what paying late costs so far) and `total_due`."""
    owed = Case(When(debt__gt=0, then=Value(0)), default=Value(1))
    return Invoice.objects.filter(account=account).order_by(
        owed, "-days_overdue", "due_date", "-voucher_date", "-pk"
    )
