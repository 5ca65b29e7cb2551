"""The rules a payment follows are record_payment's, whichever page records it: not zero, a
whole number of the currency's minor unit, on a day that has come and not before 2000, and
leaving a debt its column keeps. Hostile input gets a one-line error, never a 500."""

from datetime import date
from decimal import Decimal
from unittest import mock

import pytest
from django.core.exceptions import ValidationError

from finance.currencies import decimals, validate_minor_unit
from finance.models import Invoice, Payment
from finance.services import record_payment
from tests.clients import logged_in
from tests.finance.conftest import due

D = Decimal
BIG_REFUND = "-999999999999.99"


def pay(user, invoice, amount: str, paid_on: str = "2026-03-01"):
    return logged_in(user).post(
        f"/invoices/{invoice.pk}/payments", {"amount": amount, "paid_on": paid_on}
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "amount, paid_on, error",
    [
        (D(5), date(2099, 1, 1), "A payment cannot be in the future (today is 2026-03-15)."),
        (D(5), date(2026, 3, 16), "A payment cannot be in the future (today is 2026-03-15)."),
        (D(5), date(1999, 12, 31), "A payment cannot be before 2000-01-01."),
        (D(0), date(2026, 3, 1), "A payment cannot be zero."),
        (D("1E+12"), date(2026, 3, 1), "An amount has at most 12 digits before the point."),
        (D("1E+999999999"), date(2026, 3, 1), "at most 12 digits before the point"),
        (D("1e-999999999"), date(2026, 3, 1), "1E-999999999 has more decimals than EUR"),
    ],
)
def test_record_payment_itself_refuses_what_the_forms_refuse(now, acme, amount, paid_on, error):
    invoice = due(acme, 20, debt="100.00")

    with pytest.raises(ValidationError) as refused:
        record_payment(invoice, amount, paid_on, now)

    assert error in refused.value.messages[0] and len(refused.value.messages) == 1
    assert not Payment.objects.exists() and Invoice.objects.get(pk=invoice.pk).debt == D(100)


@pytest.mark.django_db
def test_a_second_huge_refund_gets_a_one_line_error_on_the_page(now, fiona, acme):
    invoice = due(acme, 20, debt="0")

    first = pay(fiona, invoice, BIG_REFUND)
    second = pay(fiona, invoice, BIG_REFUND)

    assert first.status_code == 302 and second.status_code == 400
    lines = second.context["form"].error_lines()
    assert lines == [
        "Amount (EUR): This payment would leave a debt of 1999999999999.98 EUR: a debt has at "
        "most 12 digits before the point."
    ]
    assert f'value="{BIG_REFUND}"' in second.content.decode()
    assert Invoice.objects.get(pk=invoice.pk).debt == D("999999999999.99")
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_a_debt_moved_meanwhile_is_checked_again_when_recording(now, fiona, acme):
    """The form checks the debt it loaded; the UPDATE checks the debt as it stands."""
    invoice = due(acme, 20, debt="0")
    stale = Invoice.objects.get(pk=invoice.pk)
    record_payment(invoice, D(BIG_REFUND), date(2026, 3, 1), now)

    with pytest.raises(ValidationError, match="would leave a debt of 1999999999999.98 EUR"):
        record_payment(stale, D(BIG_REFUND), date(2026, 3, 1), now)
    with mock.patch("finance.services.check_debt"):  # as if the form had loaded it before
        page = pay(fiona, invoice, BIG_REFUND)

    assert page.status_code == 400 and "would leave a debt of" in page.content.decode()
    assert Invoice.objects.get(pk=invoice.pk).debt == D("999999999999.99")
    assert Payment.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "amount, error",
    [
        ("1E+999999999", "at most 12 digits before the point"),
        ("1e-999999999", "more decimals than EUR allows"),
        ("1e5000", "at most 12 digits before the point"),
        ("Infinity", "Enter a number."),
        ("-0", "A payment cannot be zero."),
        ("0.001", "0.001 has more decimals than EUR allows (2)."),
        ("1" * 40, "at most 12 digits before the point"),
        ("\x00", "Enter a number."),
        ("1\x00" * 5_000, "Enter a number."),
    ],
)
def test_hostile_amounts_on_the_page_get_a_one_line_error(now, fiona, acme, amount, error):
    invoice = due(acme, 20, debt="100.00")

    page = pay(fiona, invoice, amount)

    assert page.status_code == 400
    lines = page.context["form"].error_lines()
    assert len(lines) == 1 and error in lines[0]
    assert not Payment.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("paid_on", ["0001-01-01", "9999-12-31", "x", "\x00", "9" * 10_000])
def test_hostile_dates_on_the_page_get_a_one_line_error(now, fiona, acme, paid_on):
    invoice = due(acme, 20, debt="100.00")

    page = pay(fiona, invoice, "5.00", paid_on)

    assert page.status_code == 400 and len(page.context["form"].error_lines()) == 1
    assert not Payment.objects.exists()


def test_decimals_are_read_from_the_digits_not_rounded_away():
    assert decimals(D("1e-999999999")) == 999999999
    assert (decimals(D("100.0000")), decimals(D("1000.1250")), decimals(D("1E+3"))) == (0, 3, 0)
    with pytest.raises(ValidationError):
        validate_minor_unit(D("1e-999999999"), "EUR")
    validate_minor_unit(D("12.5000"), "EUR")


@pytest.mark.django_db
def test_trailing_zeros_past_the_columns_decimals_are_the_same_amount(now, fiona, acme):
    invoice = due(acme, 20, debt="100.00")

    page = pay(fiona, invoice, "50.00000000")

    assert page.status_code == 302
    assert Invoice.objects.get(pk=invoice.pk).debt == D("50.00")
