from datetime import date
from decimal import Decimal

from django import forms

from crm.leads import OneLineErrors
from finance import services
from finance.currencies import minor_unit
from finance.models import Invoice


class AmountField(forms.DecimalField):
    """An amount checked by record_payment's rules alone, whose messages say what is wrong: too
    many digits before the point, or more decimals than the currency has (trailing zeros
    aside: 50.00000 is 50 euros). They read 1E+999999999 and 1e-999999999 by their digits,
    before any arithmetic on them."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.currency = ""

    def validate(self, value) -> None:
        super().validate(value)
        if value not in self.empty_values:
            services.check_amount(value, self.currency)


class PaymentForm(OneLineErrors, forms.Form):
    """A payment on one invoice, in its currency: a whole number of its minor unit, not zero
    (negative: a refund paid back), on a day that has come. The rules are record_payment's
    (finance/services.py), which the admin follows too."""

    amount = AmountField()
    paid_on = forms.DateField(label="Paid on", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, invoice: Invoice, today: date, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.invoice, self.today = invoice, today
        places = minor_unit(invoice.currency)
        amount = self.fields["amount"]
        amount.label = f"Amount ({invoice.currency})"
        amount.currency = invoice.currency
        amount.widget.attrs.update(step=f"{Decimal(1).scaleb(-places):f}", maxlength=30)
        self.fields["paid_on"].initial = today
        self.fields["paid_on"].widget.attrs["max"] = today.isoformat()

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        services.check_debt(self.invoice.debt, amount, self.invoice.currency)
        return amount

    def clean_paid_on(self) -> date:
        paid_on = self.cleaned_data["paid_on"]
        services.check_paid_on(paid_on, self.today)
        return paid_on
