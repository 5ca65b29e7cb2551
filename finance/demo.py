"""Demo invoices and payments: some paid, some partly paid, some long past due."""

from datetime import timedelta
from decimal import Decimal

from finance.currencies import company_currency, minor_unit
from finance.jobs import penalties_accrue
from finance.models import Invoice, Payment, PenaltyPolicy


def seed(demo) -> None:
    if Invoice.objects.filter(number__startswith="DEMO-").exists():
        return
    rng, today = demo.rng, demo.now.date()
    # In the company's currency (the invoices' default), whole minor units: yen have no cents.
    minor = Decimal(1).scaleb(-minor_unit(company_currency()))
    invoices = []
    for n, account in enumerate(demo.accounts * 2, start=1):
        amount = Decimal(rng.randint(200, 20000)) + Decimal(rng.randint(0, 99)) / 100
        amount = amount.quantize(minor)
        paid = rng.choice([Decimal(0), Decimal(0), amount / 2, amount]).quantize(minor)
        invoices.append(
            Invoice(
                account=account,
                number=f"DEMO-{n:05d}",
                voucher_date=today - timedelta(days=rng.randint(0, 150)),
                payment_terms_days=rng.choice([15, 30, 30, 60]),
                amount=amount,
                debt=amount - paid,
            )
        )
    Invoice.objects.bulk_create(invoices)
    PenaltyPolicy.objects.create(
        name="Standard terms",
        grace_days=7,
        annual_rate=Decimal("8.00"),
        fixed_fee=Decimal("25.00"),
        fee_period_days=30,
        cap_percent=Decimal("10.00"),
    )
    Payment.objects.bulk_create(
        Payment(
            invoice=inv,
            amount=inv.amount - inv.debt,
            paid_on=min(
                today,
                inv.voucher_date + timedelta(days=rng.randint(1, inv.payment_terms_days + 20)),
            ),
        )
        for inv in invoices
        if inv.debt < inv.amount
    )
    penalties_accrue(demo.now)
