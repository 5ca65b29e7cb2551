from datetime import date
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError

from crm.leads import OneLineErrors
from finance.currencies import MAX_MINOR_UNIT, minor_unit, validate_minor_unit
from finance.models import MONEY_DIGITS, Invoice
from finance.penalties import OLDEST_VOUCHER

WHOLE_DIGITS = MONEY_DIGITS - MAX_MINOR_UNIT  # what the amount columns keep
LARGEST = Decimal(10) ** WHOLE_DIGITS


class PaymentForm(OneLineErrors, forms.Form):
    """A payment on one invoice, in its currency: a whole number of its minor unit, not zero
    (negative: a refund paid back), on a day that has come."""

    amount = forms.DecimalField()
    paid_on = forms.DateField(label="Paid on", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, invoice: Invoice, today: date, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.invoice, self.today = invoice, today
        places = minor_unit(invoice.currency)
        amount = self.fields["amount"]
        amount.label = f"Amount ({invoice.currency})"
        amount.widget.attrs.update(step=f"{Decimal(1).scaleb(-places):f}", maxlength=30)
        self.fields["paid_on"].initial = today
        self.fields["paid_on"].widget.attrs["max"] = today.isoformat()

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise ValidationError("A payment cannot be zero.")
        if abs(amount) >= LARGEST:
            raise ValidationError(f"An amount has at most {WHOLE_DIGITS} digits before the point.")
        validate_minor_unit(amount, self.invoice.currency)
        return amount

    def clean_paid_on(self) -> date:
        paid_on = self.cleaned_data["paid_on"]
        if paid_on > self.today:
            raise ValidationError(f"A payment cannot be in the future (today is {self.today}).")
        if paid_on < OLDEST_VOUCHER:
            raise ValidationError(f"A payment cannot be before {OLDEST_VOUCHER}.")
        return paid_on
