"""Invoices get an ISO 4217 currency (existing ones: the company's, VIGIL_CURRENCY) and amounts
keep 4 decimals, so that each is a whole number of its currency's minor unit (JPY 0, KWD 3,
CLF 4) instead of being rounded to cents. A negative debt is a credit, not an error: the penalty
job's index stops holding it. Ledger parts become 1/365,000,000 of the minor unit: the same as
before for a currency with cents; for another company currency the penalties are accrued again
from the start by the next run (one run gives the figures of every split)."""

from decimal import Decimal

import django.core.validators
from django.db import migrations, models
from django.db.models import F

import finance.currencies

MONEY = {"max_digits": 16, "decimal_places": 4}


def accrue_again_outside_cents(apps, schema_editor):
    currency = finance.currencies.company_currency()
    if finance.currencies.minor_unit(currency) == 2:
        return
    apps.get_model("finance", "PenaltyAccrual").objects.all().delete()
    apps.get_model("finance", "Invoice").objects.update(
        penalty_parts=0,
        penalty=0,
        penalty_through_day=None,
        penalty_computed_at=None,
        penalty_open=True,
    )


class Migration(migrations.Migration):
    dependencies = [("finance", "0002_exact_penalties_payment_day")]

    operations = [
        migrations.RemoveIndex(model_name="invoice", name="invoice_penalty_due"),
        # A generated column's inputs cannot change type under it: it goes, and comes back.
        migrations.RemoveField(model_name="invoice", name="total_due"),
        migrations.AddField(
            model_name="invoice",
            name="currency",
            field=models.CharField(
                default=finance.currencies.company_currency,
                help_text="ISO 4217 code (EUR, JPY, KWD) of the amount, its payments and its "
                "penalty; each is a whole number of the currency's minor unit. New invoices: "
                "the company's.",
                max_length=3,
                validators=[finance.currencies.validate_currency],
            ),
        ),
        migrations.AlterField(
            model_name="invoice",
            name="amount",
            field=models.DecimalField(
                **MONEY, help_text="Negative for a credit note, which bears no interest."
            ),
        ),
        migrations.AlterField(
            model_name="invoice",
            name="debt",
            field=models.DecimalField(
                **MONEY,
                help_text="Outstanding balance still owed; negative when overpaid (a credit to "
                "the client).",
            ),
        ),
        migrations.AlterField(
            model_name="invoice",
            name="penalty",
            field=models.DecimalField(
                **MONEY,
                db_default=Decimal("0"),
                help_text="Penalty owed: the exact ledger total rounded half-up to the "
                "currency's minor unit (the one rounding point).",
            ),
        ),
        migrations.AlterField(
            model_name="invoice",
            name="penalty_open",
            field=models.BooleanField(
                db_default=True,
                default=True,
                help_text="The penalty job still has days to look at. Off once the invoice is "
                "paid off (or is a credit) and its penalty is final; on again while there is a "
                "debt, and when a payment is recorded.",
            ),
        ),
        migrations.AlterField(
            model_name="invoice",
            name="penalty_parts",
            field=models.DecimalField(
                db_default=Decimal("0"),
                decimal_places=0,
                help_text="Penalty owed, exactly, in parts of 1/365,000,000 of the minor unit: "
                "the sum of the ledger.",
                max_digits=32,
            ),
        ),
        migrations.AlterField(
            model_name="payment",
            name="amount",
            field=models.DecimalField(
                **MONEY, help_text="In the invoice's currency. Negative for a refund paid back."
            ),
        ),
        migrations.AlterField(
            model_name="penaltyaccrual",
            name="balance_days",
            field=models.DecimalField(
                decimal_places=4,
                help_text="Sum over the days of the balance bearing interest: the outstanding "
                "debt, never more than the invoice nor less than zero.",
                max_digits=26,
            ),
        ),
        migrations.AlterField(
            model_name="penaltyaccrual",
            name="interest_parts",
            field=models.DecimalField(
                decimal_places=0,
                help_text="Interest, exactly, in parts of 1/365,000,000 of the minor unit: "
                "balance-days in minor units x the rate in 0.0001 %.",
                max_digits=32,
            ),
        ),
        migrations.AlterField(
            model_name="penaltypolicy",
            name="cap_amount",
            field=models.DecimalField(
                blank=True,
                decimal_places=2,
                help_text="Most an invoice's penalty can reach, in its currency. Empty: no cap.",
                max_digits=14,
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(
                        Decimal("0"), "The cap cannot be negative."
                    )
                ],
            ),
        ),
        migrations.AlterField(
            model_name="penaltypolicy",
            name="fixed_fee",
            field=models.DecimalField(
                decimal_places=2,
                default=Decimal("0"),
                help_text="Charged once for every full fee period overdue, in the invoice's "
                "currency.",
                max_digits=12,
                validators=[
                    django.core.validators.MinValueValidator(
                        Decimal("0"), "The fixed fee cannot be negative."
                    )
                ],
            ),
        ),
        migrations.AddField(
            model_name="invoice",
            name="total_due",
            field=models.GeneratedField(
                db_persist=True,
                expression=F("debt") + F("penalty"),
                output_field=models.DecimalField(decimal_places=4, max_digits=17),
            ),
        ),
        migrations.AddIndex(
            model_name="invoice",
            index=models.Index(
                condition=models.Q(("penalty_open", True), ("debt__gt", 0), _connector="OR"),
                fields=["penalty_through_day", "id"],
                name="invoice_penalty_due",
            ),
        ),
        migrations.RunPython(accrue_again_outside_cents, migrations.RunPython.noop),
    ]
