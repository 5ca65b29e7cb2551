"""Demo invoices and payments: some paid, some partly paid, some long past due."""

from datetime import timedelta
from decimal import Decimal

from finance.models import Invoice, Payment


def seed(demo) -> None:
    if Invoice.objects.filter(number__startswith="DEMO-").exists():
        return
    rng, today = demo.rng, demo.now.date()
    invoices = []
    for n, account in enumerate(demo.accounts * 2, start=1):
        amount = Decimal(rng.randint(200, 20000)) + Decimal(rng.randint(0, 99)) / 100
        paid = rng.choice([Decimal(0), Decimal(0), amount / 2, amount]).quantize(Decimal("0.01"))
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
    Payment.objects.bulk_create(
        Payment(
            invoice=inv,
            amount=inv.amount - inv.debt,
            paid_on=inv.voucher_date + timedelta(days=rng.randint(1, inv.payment_terms_days + 20)),
        )
        for inv in invoices
        if inv.debt < inv.amount
    )
