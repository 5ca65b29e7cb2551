"""Exact penalties: the ledger and the invoice keep whole numbers of parts (1/36,500,000,000 of
the currency unit) instead of amounts rounded to 10 decimals; the payment-day convention becomes
a policy option; a failed invoice is recorded; the job finds its work from an index."""

from decimal import Decimal

from django.db import migrations, models

WHOLE = {"max_digits": 32, "decimal_places": 0}

# Rows written before this migration: the interest again from the exact balance-days and rate;
# a capped amount from its 10 decimals (the best that is left of it).
TO_PARTS = """
UPDATE finance_penaltyaccrual SET
    interest_parts = ROUND(balance_days * 100 * annual_rate * 10000),
    amount_parts = CASE
        WHEN amount = interest + fees
        THEN ROUND(balance_days * 100 * annual_rate * 10000) + ROUND(fees * 100) * 365000000
        ELSE ROUND(amount * 36500000000) END
"""
# Every invoice is looked at again by the next run, which rounds its new exact total.
INVOICE_PARTS = """
UPDATE finance_invoice SET penalty_parts = COALESCE((
    SELECT SUM(a.amount_parts) FROM finance_penaltyaccrual a
    WHERE a.invoice_id = finance_invoice.id), 0)
WHERE penalty_through_day IS NOT NULL
"""


class Migration(migrations.Migration):
    dependencies = [("finance", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="penaltypolicy",
            name="payment_day_bears_interest",
            field=models.BooleanField(
                db_default=True,
                default=True,
                help_text="On: a paid amount still bears interest on the day it is paid, as "
                "ERPNext's Dunning and statutory late-payment practice count (days = payment "
                "date - due date): £400 of £1,000 at 13.25 % paid on day 10 gives 7.99 after 30 "
                "days. Off: interest on it stops on the payment day itself (7.84).",
            ),
        ),
        migrations.AddField(
            model_name="penaltyaccrual",
            name="interest_parts",
            field=models.DecimalField(
                **WHOLE,
                default=Decimal(0),
                help_text="Interest, exactly, in parts of 1/36,500,000,000: balance-days in "
                "cents x the rate in 0.0001 %.",
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="penaltyaccrual",
            name="amount_parts",
            field=models.DecimalField(
                **WHOLE,
                default=Decimal(0),
                help_text="Interest plus fees, after the cap, exactly, in parts.",
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="invoice",
            name="penalty_parts",
            field=models.DecimalField(
                **WHOLE,
                db_default=Decimal(0),
                help_text="Penalty owed, exactly, in parts of 1/36,500,000,000: the sum of the "
                "ledger.",
            ),
        ),
        migrations.RunSQL(TO_PARTS, migrations.RunSQL.noop),
        migrations.RunSQL(INVOICE_PARTS, migrations.RunSQL.noop),
        migrations.RemoveField(model_name="penaltyaccrual", name="interest"),
        migrations.RemoveField(model_name="penaltyaccrual", name="amount"),
        migrations.RemoveField(model_name="invoice", name="penalty_accrued"),
        migrations.RemoveIndex(model_name="penaltyaccrual", name="accrual_by_run"),
        migrations.AlterField(
            model_name="invoice",
            name="penalty",
            field=models.DecimalField(
                db_default=Decimal(0),
                decimal_places=2,
                help_text="Penalty owed: the exact ledger total rounded half-up to the cent (the "
                "one rounding point).",
                max_digits=14,
            ),
        ),
        migrations.AddField(
            model_name="invoice",
            name="penalty_open",
            field=models.BooleanField(
                db_default=True,
                default=True,
                help_text="The penalty job still has days to look at. Off once the invoice is "
                "paid off and its penalty is final; on again while there is a debt.",
            ),
        ),
        migrations.AddField(
            model_name="invoice",
            name="penalty_error",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="Why the last penalty run could not compute this invoice (it was "
                "skipped; the next run tries again). Empty when all is well.",
                max_length=500,
            ),
        ),
        migrations.AddIndex(
            model_name="invoice",
            index=models.Index(
                condition=models.Q(("penalty_open", True), models.Q(("debt", 0), _negated=True), _connector="OR"),
                fields=["penalty_through_day", "id"],
                name="invoice_penalty_due",
            ),
        ),
        migrations.AddIndex(
            model_name="payment",
            index=models.Index(fields=["recorded_at"], name="payment_recorded"),
        ),
    ]
