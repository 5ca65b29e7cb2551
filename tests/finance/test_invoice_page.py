"""The invoice page: amounts, status, payments, the penalty with its policy and ledger; finance
records a payment there, the debt changes at once and the nightly run corrects the penalty."""

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from finance.jobs import penalties_accrue
from finance.models import Invoice, Payment, PenaltyPolicy
from finance.services import record_payment
from tests.clients import logged_in
from tests.factories import AccountFactory, InvoiceFactory
from tests.finance.conftest import NOW, TODAY, on

D = Decimal


def penalty(*balances: tuple[int, int]) -> Decimal:
    """An independent oracle: days x balance x 10 % / 365, rounded once to the cent."""
    interest = sum(D(days) * D(balance) * 10 / D(36500) for days, balance in balances)
    return D(interest).quantize(D("0.01"), rounding=ROUND_HALF_UP)


@pytest.fixture
def policy(db):
    return PenaltyPolicy.objects.create(name="Standard terms", annual_rate=D("10"))


@pytest.fixture
def late(now, acme, policy):
    """1,000 EUR due 31 January, its penalty accrued by the runs of 10 February and today."""
    invoice = InvoiceFactory(
        account=acme, number="INV-LATE", voucher_date=date(2026, 1, 1), amount=D(1000), debt=D(1000)
    )
    penalties_accrue(on(date(2026, 2, 10)))
    penalties_accrue(on(TODAY))
    invoice.refresh_from_db()
    return invoice


def page_of(user, invoice: Invoice):
    return logged_in(user).get(f"/invoices/{invoice.pk}/")


@pytest.mark.django_db
def test_the_page_shows_amounts_status_policy_and_each_ledger_period(fiona, late):
    page = page_of(fiona, late)
    body = page.content.decode()

    assert page.status_code == 200
    assert "1,000.00 EUR" in body and "Sat 31 Jan 2026" in body and "43 days past due" in body
    assert late.penalty == penalty((43, 1000)) == D("11.78")
    assert '<dd id="penalty">11.78 EUR</dd>' in body
    assert "Standard terms" in body and "(the default)" in body and "10 % a year" in body
    assert [
        (r["start"], r["end"], r["days"], r["base"], r["rate"]) for r in page.context["accruals"]
    ] == [
        (date(2026, 2, 11), date(2026, 3, 15), 33, "1,000.00 EUR", D(10)),
        (date(2026, 2, 1), date(2026, 2, 10), 10, "1,000.00 EUR", D(10)),
    ]
    assert page.context["accruals"][1]["amount"] == "2.739726027397 EUR"  # exact: 10 days
    assert "No payment recorded." in body


@pytest.mark.django_db
def test_an_accounts_own_policy_and_a_penalty_error_are_shown(fiona, late):
    PenaltyPolicy.objects.create(
        name="Acme's deal", account=late.account, grace_days=5, cap_percent=D("2.5")
    )
    Invoice.objects.filter(pk=late.pk).update(penalty_error="2026-03-15: numeric field overflow")

    body = page_of(fiona, late).content.decode()

    assert "Acme&#x27;s deal" in body and "(this account's)" in body and "5 days" in body
    assert "2.5 % of the invoice" in body
    assert 'id="penalty-error"' in body and "numeric field overflow" in body


@pytest.mark.django_db
def test_finance_records_a_payment_the_debt_drops_at_once_and_the_run_corrects_the_penalty(
    fiona, late, time_machine
):
    before = late.penalty
    client = logged_in(fiona)

    response = client.post(
        f"/invoices/{late.pk}/payments", {"amount": "400.00", "paid_on": "2026-03-10"}
    )

    late.refresh_from_db()
    assert response.status_code == 302 and response["Location"] == f"/invoices/{late.pk}/"
    assert late.debt == D(600) and late.penalty == before  # the penalty waits for the run
    payment = Payment.objects.get(invoice=late)
    assert (payment.amount, payment.paid_on, payment.recorded_at) == (
        D(400),
        date(2026, 3, 10),
        NOW,
    )
    page = client.get(response["Location"]).content.decode()
    assert "the debt is now 600.00 EUR" in page and "Tonight&#x27;s penalty run corrects" in page
    assert "400.00 EUR" in page and '<dd id="debt">600.00 EUR</dd>' in page

    time_machine.move_to(on(TODAY + timedelta(days=1), 3), tick=False)
    penalties_accrue(on(TODAY + timedelta(days=1)))

    late.refresh_from_db()
    # 1 Feb to 10 Mar (the payment day still bears interest) on 1,000; 11 to 16 Mar on 600.
    assert late.penalty == penalty((38, 1000), (6, 600)) == D("11.40")
    assert late.penalty < penalty((44, 1000))  # what it would have been without the payment


@pytest.mark.django_db
def test_a_refund_is_a_negative_payment_and_raises_the_debt(fiona, late):
    logged_in(fiona).post(
        f"/invoices/{late.pk}/payments", {"amount": "-25.50", "paid_on": "2026-03-14"}
    )

    late.refresh_from_db()
    assert late.debt == D("1025.50")


@pytest.mark.django_db
def test_two_payments_recorded_at_once_both_count(late):
    stale = Invoice.objects.get(pk=late.pk)

    record_payment(late, D(100), TODAY, NOW)
    record_payment(stale, D(50), TODAY, NOW)  # its debt was read before the first

    assert Invoice.objects.get(pk=late.pk).debt == D(850)


@pytest.mark.django_db
def test_an_administrator_records_payments_too(administrator, late):
    response = logged_in(administrator).post(
        f"/invoices/{late.pk}/payments", {"amount": "1000", "paid_on": "2026-03-15"}
    )

    assert response.status_code == 302 and Invoice.objects.get(pk=late.pk).debt == 0


@pytest.mark.django_db
def test_reps_and_managers_see_the_page_but_cannot_record_a_payment(rita, manny, late):
    for user in (rita, manny):
        page = page_of(user, late)
        posted = logged_in(user).post(
            f"/invoices/{late.pk}/payments", {"amount": "400.00", "paid_on": "2026-03-10"}
        )

        assert page.status_code == 200 and 'id="payment-form"' not in page.content.decode()
        assert posted.status_code == 403
    assert not Payment.objects.exists() and Invoice.objects.get(pk=late.pk).debt == D(1000)


@pytest.mark.django_db
def test_another_teams_people_find_no_invoice(sam, sue, late):
    for user in (sam, sue):
        assert page_of(user, late).status_code == 404
        posted = logged_in(user).post(
            f"/invoices/{late.pk}/payments", {"amount": "1", "paid_on": "2026-03-10"}
        )
        assert posted.status_code == 404
    assert not Payment.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "amount, paid_on, error",
    [
        ("12.345", "2026-03-10", "12.345 has more decimals than EUR allows (2)."),
        ("1" * 10_000, "2026-03-10", "at most 12 digits before the point"),
        ("1" * 13, "2026-03-10", "at most 12 digits before the point"),
        ("0." + "0" * 9_998 + "1", "2026-03-10", "more decimals than EUR allows"),
        ("12\x00", "2026-03-10", "Enter a number."),
        ("NaN", "2026-03-10", "Enter a number."),
        ("0.00", "2026-03-10", "A payment cannot be zero."),
        ("", "2026-03-10", "This field is required."),
        ("10.00", "2026-03-16", "A payment cannot be in the future (today is 2026-03-15)."),
        ("10.00", "1999-12-31", "A payment cannot be before 2000-01-01."),
        ("10.00", "2026-02-30", "Enter a valid date."),
        ("10.00", "2026-03-10\x00", "Enter a valid date."),
        ("10.00", "9" * 10_000, "Enter a valid date."),
    ],
)
def test_a_bad_payment_gets_a_one_line_error_and_keeps_what_was_typed(
    fiona, late, amount, paid_on, error
):
    page = logged_in(fiona).post(
        f"/invoices/{late.pk}/payments", {"amount": amount, "paid_on": paid_on}
    )

    body = page.content.decode()
    assert page.status_code == 400
    assert error in " ".join(page.context["form"].error_lines())
    assert body.count('class="message error form-error"') == 1
    assert not Payment.objects.exists() and Invoice.objects.get(pk=late.pk).debt == D(1000)
    if amount == "12.345":
        assert 'value="12.345"' in body and 'value="2026-03-10"' in body


@pytest.mark.django_db
def test_the_largest_amount_a_payment_may_have(fiona, late):
    largest = "999999999999.99"

    logged_in(fiona).post(
        f"/invoices/{late.pk}/payments", {"amount": largest, "paid_on": "2026-03-10"}
    )

    assert Invoice.objects.get(pk=late.pk).debt == D(1000) - D(largest)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "currency, amount, ok", [("JPY", "10.5", False), ("JPY", "1050", True), ("KWD", "1.125", True)]
)
def test_the_amount_is_in_the_invoices_own_minor_unit(now, fiona, acme, currency, amount, ok):
    invoice = InvoiceFactory(account=acme, currency=currency, amount=D(5000), debt=D(5000))

    page = logged_in(fiona).post(
        f"/invoices/{invoice.pk}/payments", {"amount": amount, "paid_on": "2026-03-10"}
    )

    assert (page.status_code == 302) is ok
    assert Invoice.objects.get(pk=invoice.pk).debt == (D(5000) - D(amount) if ok else D(5000))


def queries(user, invoice) -> int:
    client = logged_in(user)
    with CaptureQueriesContext(connection) as run:
        assert client.get(f"/invoices/{invoice.pk}/").status_code == 200
    return len(run.captured_queries)


@pytest.mark.django_db
def test_the_page_runs_the_same_queries_with_one_payment_and_ledger_row_and_with_many(
    fiona, manny, late, time_machine
):
    record_payment(late, D(1), date(2026, 3, 1), NOW)
    one = (queries(fiona, late), queries(manny, late))
    for day in range(1, 40):
        record_payment(late, D(1), date(2026, 1, 1) + timedelta(days=day), NOW)
    for day in range(16, 31):
        time_machine.move_to(on(date(2026, 3, day), 3), tick=False)
        penalties_accrue(on(date(2026, 3, day)))

    assert late.accruals.count() > 10
    assert (queries(fiona, late), queries(manny, late)) == one


@pytest.mark.django_db
def test_the_admin_records_payments_through_the_same_service(administrator, late):
    client = logged_in(administrator)

    added = client.post(
        "/admin/finance/payment/add/",
        {"invoice": late.pk, "paid_on": "2026-03-01", "amount": "100"},
    )

    assert added.status_code == 302
    assert Invoice.objects.get(pk=late.pk).debt == D(900)
    change = client.get(f"/admin/finance/invoice/{late.pk}/change/")
    assert "debt" not in change.context["adminform"].form.fields  # kept by the payments


@pytest.mark.django_db
def test_a_payment_added_under_a_saved_invoice_in_the_admin_lowers_its_debt(administrator, late):
    client = logged_in(administrator)
    form = client.get(f"/admin/finance/invoice/{late.pk}/change/").context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    data.update(
        {
            "payments-TOTAL_FORMS": 1,
            "payments-INITIAL_FORMS": 0,
            "payments-0-paid_on": "2026-03-12",
            "payments-0-amount": "250",
        }
    )

    saved = client.post(f"/admin/finance/invoice/{late.pk}/change/", data)

    assert saved.status_code == 302, saved.context["adminform"].form.errors
    assert Invoice.objects.get(pk=late.pk).debt == D(750)
    assert Payment.objects.get(invoice=late).recorded_at is not None


@pytest.mark.django_db
def test_a_finance_user_of_no_team_reaches_every_invoice(fiona, now):
    elsewhere = InvoiceFactory(account=AccountFactory(name="Nowhere Ltd"), number="FAR-1")

    assert page_of(fiona, elsewhere).status_code == 200


@pytest.mark.django_db
def test_the_reminder_form_is_offered_to_whom_the_reminder_rule_lets_add_one(fiona, rita, late):
    assert "Remind me" not in page_of(fiona, late).content.decode()  # of no team
    assert "Remind me" in page_of(rita, late).content.decode()
