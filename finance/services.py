"""Writes on invoices that people make: recording a payment.

The rules a payment follows are here, so that the invoice page (finance/forms.py) and the
admin (finance/admin.py) refuse the same payments with the same one-line messages."""

from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from finance.currencies import MAX_MINOR_UNIT, shown, validate_minor_unit
from finance.invoice_list import company_today
from finance.models import MONEY_DIGITS, Invoice, Payment
from finance.penalties import OLDEST_VOUCHER

WHOLE_DIGITS = MONEY_DIGITS - MAX_MINOR_UNIT  # what the amount columns keep
LARGEST = Decimal(10) ** WHOLE_DIGITS  # no amount, and no debt, reaches it


def check_amount(amount: Decimal, currency: str) -> None:
    """Not zero, fits the amount columns, a whole number of the currency's minor unit."""
    amount = Decimal(amount)
    if not amount.is_finite():
        raise ValidationError("Enter a number.", code="invalid")
    if amount == 0:
        raise ValidationError("A payment cannot be zero.", code="zero")
    if amount.adjusted() >= WHOLE_DIGITS:
        raise ValidationError(
            f"An amount has at most {WHOLE_DIGITS} digits before the point.", code="too_large"
        )
    validate_minor_unit(amount, currency)


def check_paid_on(paid_on: date, today: date) -> None:
    """A day that has come (company time), and not before the oldest voucher date."""
    if paid_on > today:
        raise ValidationError(
            f"A payment cannot be in the future (today is {today}).", code="future"
        )
    if paid_on < OLDEST_VOUCHER:
        raise ValidationError(f"A payment cannot be before {OLDEST_VOUCHER}.", code="too_old")


def check_debt(debt: Decimal, amount: Decimal, currency: str) -> None:
    """The debt the payment leaves must fit its column (under 10^12 either way)."""
    if not -LARGEST < debt - amount < LARGEST:
        raise ValidationError(debt_out_of_range(debt, amount, currency), code="debt_range")


def debt_out_of_range(debt: Decimal, amount: Decimal, currency: str) -> str:
    return (
        f"This payment would leave a debt of {shown(debt - amount)} {currency}: a debt has at "
        f"most {WHOLE_DIGITS} digits before the point."
    )


def check_payment(invoice: Invoice, amount: Decimal, paid_on: date, today: date) -> None:
    """Every rule a payment on `invoice` follows, against its debt as loaded; the first broken
    one is raised."""
    check_amount(amount, invoice.currency)
    check_paid_on(paid_on, today)
    check_debt(invoice.debt, amount, invoice.currency)


def record_payment(invoice: Invoice, amount: Decimal, paid_on: date, now: datetime) -> Payment:
    """Record a payment (a refund when negative) and lower the invoice's debt by it, at once
    and together. The debt moves by F() in the database, so two payments recorded at the same
    moment both count; the UPDATE is conditional on the debt it leaves fitting its column, so
    that two refunds at the same moment cannot overflow it (ValidationError, nothing recorded).
    The penalty is the nightly job's: the payment reopens the invoice (Payment.save), and a
    payment dated on a day already accrued makes the next run compute the days from it again."""
    check_amount(amount, invoice.currency)
    check_paid_on(paid_on, company_today(now))
    with transaction.atomic():
        payment = Payment(invoice=invoice, amount=amount, paid_on=paid_on, recorded_at=now)
        payment.save()
        moved = Invoice.objects.filter(
            pk=invoice.pk, debt__gt=amount - LARGEST, debt__lt=amount + LARGEST
        ).update(debt=F("debt") - amount)
        if moved != 1:
            debt = Invoice.objects.filter(pk=invoice.pk).values_list("debt", flat=True).first()
            raise ValidationError(
                debt_out_of_range(invoice.debt if debt is None else debt, amount, invoice.currency),
                code="debt_range",
            )
    invoice.refresh_from_db(fields=["debt", "total_due", "penalty_open"])
    return payment
