"""Writes on invoices that people make: recording a payment."""

from datetime import date, datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F

from finance.currencies import validate_minor_unit
from finance.models import Invoice, Payment


def record_payment(invoice: Invoice, amount: Decimal, paid_on: date, now: datetime) -> Payment:
    """Record a payment (a refund when negative) and lower the invoice's debt by it, at once
    and together. The debt moves by F() in the database, so two payments recorded at the same
    moment both count. The penalty is the nightly job's: the payment reopens the invoice
    (Payment.save), and a payment dated on a day already accrued makes the next run compute
    the days from it again."""
    validate_minor_unit(amount, invoice.currency)
    with transaction.atomic():
        payment = Payment(invoice=invoice, amount=amount, paid_on=paid_on, recorded_at=now)
        payment.save()
        Invoice.objects.filter(pk=invoice.pk).update(debt=F("debt") - amount)
    invoice.refresh_from_db(fields=["debt", "total_due", "penalty_open"])
    return payment
