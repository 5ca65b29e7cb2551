from datetime import date

import pytest

from finance.selectors import unpaid
from tests.factories import InvoiceFactory


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("voucher", "terms", "due"),
    [
        (date(2024, 2, 15), 30, date(2024, 3, 16)),  # through a leap day
        (date(2026, 12, 20), 15, date(2027, 1, 4)),
        (date(2026, 11, 28), 0, date(2026, 11, 28)),
    ],
)
def test_the_database_keeps_due_date_as_voucher_date_plus_terms(voucher, terms, due):
    invoice = InvoiceFactory(voucher_date=voucher, payment_terms_days=terms)

    assert unpaid().get(pk=invoice.pk).due_date == due
