"""Invoices in ISO 4217 currencies: amounts and penalties in each currency's minor unit (JPY 0,
EUR 2, KWD 3), refused rather than rounded when finer, and shown with their currency."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import hypothesis
import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.forms import modelform_factory
from django.utils.formats import number_format
from hypothesis import strategies

from finance.currencies import decimals, minor_unit, money, plain
from finance.jobs import penalties_accrue
from finance.models import Invoice, Payment, PenaltyPolicy
from tests.clients import logged_in
from tests.factories import AccountFactory, InvoiceFactory

D = Decimal


def invoice_form(data: dict):
    fields = [
        "account",
        "number",
        "voucher_date",
        "payment_terms_days",
        "currency",
        "amount",
        "debt",
    ]
    return modelform_factory(Invoice, fields=fields)(data)


def accrue_to(day: date) -> None:
    penalties_accrue(datetime(day.year, day.month, day.day, 2, 30, tzinfo=UTC))


def invoice_in(currency: str, amount: str, **fields) -> Invoice:
    """Due on Jan 31 (voucher Jan 1, 30 days' terms)."""
    return InvoiceFactory(
        voucher_date=date(2026, 1, 1),
        currency=currency,
        amount=D(amount),
        debt=D(amount),
        **fields,
    )


@pytest.fixture
def policy(db):
    return PenaltyPolicy.objects.create(name="Default", annual_rate=D("13.25"))


@pytest.mark.django_db
def test_a_new_invoice_is_in_the_company_currency(settings):
    settings.VIGIL_CURRENCY = "GBP"

    assert Invoice().currency == "GBP"
    assert InvoiceFactory().currency == "GBP"


@pytest.mark.django_db
def test_a_kwd_amount_keeps_its_third_decimal():
    inv = invoice_in("KWD", "1000.125")

    inv.refresh_from_db()

    assert inv.amount == inv.debt == D("1000.125")  # not 1000.13


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("currency", "amount", "until", "penalty"),
    [
        # 100,000 x 13.25 % x 30 / 365 = 1089.04: whole yen
        ("JPY", "100000", date(2026, 3, 2), "1089"),
        # 1000.125 x 13.25 % x 10 / 365 = 3.63059: whole fils
        ("KWD", "1000.125", date(2026, 2, 10), "3.631"),
        ("BHD", "1000.125", date(2026, 2, 10), "3.631"),
        ("EUR", "1000.00", date(2026, 2, 10), "3.63"),
    ],
)
def test_a_penalty_is_rounded_half_up_in_its_currency_minor_unit(
    policy, currency, amount, until, penalty
):
    inv = invoice_in(currency, amount)

    accrue_to(until)

    inv.refresh_from_db()
    assert inv.penalty == D(penalty)
    assert inv.total_due == D(amount) + D(penalty)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("currency", "amount", "message"),
    [
        ("KWD", "1000.1255", "1000.1255 has more decimals than KWD allows (3)."),
        ("JPY", "1000.5", "1000.5 has more decimals than JPY allows (0)."),
        ("EUR", "10.001", "10.001 has more decimals than EUR allows (2)."),
    ],
)
def test_an_amount_finer_than_its_currency_is_refused_not_rounded(currency, amount, message):
    form = invoice_form(
        {
            "account": AccountFactory().pk,
            "number": "X-1",
            "voucher_date": "2026-01-01",
            "payment_terms_days": 30,
            "currency": currency,
            "amount": amount,
            "debt": "0",
        }
    )

    assert not form.is_valid()
    assert form.errors["amount"] == [message]
    assert not Invoice.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["XYZ", "eur", "XAU", "XTS"])
def test_a_currency_must_be_an_iso_4217_code_of_money(code):
    form = invoice_form(
        {
            "account": AccountFactory().pk,
            "number": "X-1",
            "voucher_date": "2026-01-01",
            "payment_terms_days": 30,
            "currency": code,
            "amount": "10",
            "debt": "10",
        }
    )

    assert not form.is_valid()
    assert (
        f"{code!r} is not an ISO 4217 currency code (three capital letters, such as EUR)."
        in (form.errors["currency"])
    )


@pytest.mark.django_db
def test_a_payment_finer_than_its_invoice_currency_is_refused():
    payment = Payment(invoice=invoice_in("JPY", "5000"), paid_on=date(2026, 2, 1), amount=D("0.5"))

    with pytest.raises(ValidationError) as refused:
        payment.full_clean()

    assert refused.value.message_dict == {"amount": ["0.5 has more decimals than JPY allows (0)."]}


@pytest.mark.django_db
def test_payments_entered_with_a_new_invoice_are_checked_against_its_currency(administrator):
    page = logged_in(administrator).post(
        "/admin/finance/invoice/add/",
        {
            "account": AccountFactory().pk,
            "number": "JP-1",
            "voucher_date": "2026-01-01",
            "payment_terms_days": 30,
            "currency": "JPY",
            "amount": "5000",
            "debt": "4999.5",
            "payments-TOTAL_FORMS": 1,
            "payments-INITIAL_FORMS": 0,
            "payments-0-paid_on": "2026-01-10",
            "payments-0-amount": "0.5",
        },
    )

    assert page.status_code == 200  # the form again, with its errors
    assert page.content.decode().count("has more decimals than JPY allows (0).") == 2
    assert not Invoice.objects.exists()


@pytest.fixture
def book(policy):
    """One invoice in each kind of currency, with its penalty computed."""
    invoice_in("KWD", "1000.125", number="KW-1")
    invoice_in("JPY", "100000", number="JP-1")
    invoice_in("EUR", "1234.50", number="EU-1")
    accrue_to(date(2026, 3, 2))


@pytest.mark.django_db
def test_the_admin_shows_each_amount_with_its_currency(book, administrator):
    page = logged_in(administrator).get("/admin/finance/invoice/").content.decode()

    assert "1,000.125 KWD" in page  # amount and debt
    assert "100,000 JPY" in page and "1,089 JPY" in page and "101,089 JPY" in page
    assert "1,234.50 EUR" in page


@pytest.mark.django_db
def test_the_csv_export_gives_amounts_in_their_minor_unit_beside_their_currency(
    book, administrator
):
    ids = list(Invoice.objects.values_list("pk", flat=True))

    response = logged_in(administrator).post(
        "/admin/finance/invoice/", {"action": "export_csv", "_selected_action": ids}
    )

    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    by_number = {row["number"]: row for row in rows}
    assert {k: by_number["JP-1"][k] for k in ("currency", "amount", "penalty", "total_due")} == {
        "currency": "JPY",
        "amount": "100000",
        "penalty": "1089",
        "total_due": "101089",
    }
    assert (by_number["KW-1"]["currency"], by_number["KW-1"]["amount"]) == ("KWD", "1000.125")
    assert (by_number["EU-1"]["currency"], by_number["EU-1"]["debt"]) == ("EUR", "1234.50")


@pytest.mark.django_db
def test_the_invoice_page_shows_amounts_with_their_currency(book, administrator):
    inv = Invoice.objects.get(number="KW-1")

    page = logged_in(administrator).get(f"/invoices/{inv.pk}/").content.decode()

    assert "1,000.125 KWD" in page


def test_a_company_currency_that_is_not_iso_4217_stops_start_up(settings):
    settings.VIGIL_CURRENCY = "EURO"

    with pytest.raises(SystemCheckError, match="VIGIL_CURRENCY='EURO' is not an ISO 4217"):
        call_command("check")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("company", "ledger_kept"), [("EUR", True), ("JPY", False)], ids=["cents", "yen"]
)
def test_existing_invoices_get_the_company_currency_and_keep_their_amounts(
    settings, company, ledger_kept
):
    """The upgrade: every invoice gets VIGIL_CURRENCY. A ledger counted in cents stays; in a
    currency without cents it is accrued again by the next run."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    settings.VIGIL_CURRENCY = company
    before = [("finance", "0002_exact_penalties_payment_day")]
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    OldInvoice = old.get_model("finance", "Invoice")
    OldAccrual = old.get_model("finance", "PenaltyAccrual")
    inv = OldInvoice.objects.create(
        account_id=AccountFactory().pk,
        number="OLD-1",
        voucher_date=date(2026, 1, 1),
        amount=D("1000.00"),
        debt=D("400.00"),
        penalty=D("3.56"),
        penalty_parts=D("130000000000"),
        penalty_through_day=20500,
    )
    OldAccrual.objects.create(
        invoice=inv,
        start_day=20485,
        end_day=20500,
        days=16,
        balance_days=D("16000"),
        annual_rate=D("10"),
        interest_parts=D("130000000000"),
        fees=0,
        amount_parts=D("130000000000"),
        run_day=20500,
    )

    MigrationExecutor(connection).migrate(latest)

    inv = Invoice.objects.get(number="OLD-1")
    assert (inv.currency, inv.amount, inv.debt) == (company, D("1000.00"), D("400.00"))
    if ledger_kept:
        assert (inv.penalty, inv.total_due, inv.accruals.count()) == (D("3.56"), D("403.56"), 1)
    else:
        assert (inv.penalty, inv.penalty_through_day, inv.accruals.count()) == (0, None, 0)
        assert inv.penalty_open


@hypothesis.settings(max_examples=300, deadline=None, database=None)
@hypothesis.example(amount=Decimal("-0.00"), code="EUR")  # Django writes "0.00 EUR"
@hypothesis.example(amount=Decimal("-1234567.125"), code="KWD")
@hypothesis.given(
    amount=strategies.decimals(
        min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=6, allow_nan=False
    ),
    code=strategies.sampled_from(["EUR", "JPY", "KWD", "USD"]),
)
def test_money_groups_digits_as_the_locale_does(amount, code):
    """money() writes grouping itself, for speed: what Django's locale formatter writes, and
    never a minus sign on a zero."""
    places = max(minor_unit(code), decimals(amount))
    expected = number_format(Decimal(plain(amount, code)), places, force_grouping=True)

    assert money(amount, code) == f"{expected} {code}"
