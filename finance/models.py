from django.db import models
from django.db.models import F, Q

from crm.sql import AddDays


class Invoice(models.Model):
    account = models.ForeignKey("crm.Account", on_delete=models.PROTECT, related_name="invoices")
    number = models.CharField(max_length=40, unique=True)
    voucher_date = models.DateField(help_text="When the voucher was created; terms run from it.")
    payment_terms_days = models.PositiveSmallIntegerField(
        default=30, help_text="Days after the voucher date that payment is due."
    )
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    debt = models.DecimalField(
        max_digits=14, decimal_places=2, help_text="Outstanding balance still owed."
    )
    due_date = models.GeneratedField(
        expression=AddDays(F("voucher_date"), F("payment_terms_days")),
        output_field=models.DateField(),
        db_persist=True,
        help_text="Voucher date plus payment terms; kept by the database.",
    )

    class Meta:
        indexes = [
            models.Index(
                fields=["voucher_date"], condition=Q(debt__gt=0), name="invoice_with_debt"
            ),
            models.Index(fields=["account", "voucher_date"]),
        ]

    def __str__(self) -> str:
        return self.number


class Payment(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="payments")
    paid_on = models.DateField()
    amount = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        indexes = [models.Index(fields=["invoice", "paid_on"])]

    def __str__(self) -> str:
        return f"{self.amount} on {self.paid_on}"
