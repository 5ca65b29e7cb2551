"""In Chromium, finance opens Invoices, opens an overdue invoice and records a payment: the debt
drops at once; after the penalty run (crm.runner.run_job, as the nightly schedule runs it) a
reload shows the corrected penalty."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from crm.models import JobRun
from crm.runner import run_job
from finance.currencies import money
from finance.models import Invoice, Payment, PenaltyPolicy
from tests.browser.conftest import sign_in
from tests.factories import AccountFactory, InvoiceFactory, TeamFactory, UserFactory

D = Decimal


@pytest.fixture
def fiona(transactional_db):
    return UserFactory(username="fiona", first_name="Fiona", role="finance")


@pytest.fixture
def overdue(fiona):
    """1,000 EUR due 60 days ago, its penalty brought up to today by a run."""
    PenaltyPolicy.objects.create(name="Standard terms", annual_rate=D("10"))
    today = timezone.localdate()
    invoice = InvoiceFactory(
        account=AccountFactory(name="Acme", team=TeamFactory(name="North")),
        number="INV-OVERDUE",
        voucher_date=today - timedelta(days=90),
        payment_terms_days=30,
        amount=D(1000),
        debt=D(1000),
    )
    assert run_job("finance_penalties", timezone.now()).status == JobRun.Status.SUCCEEDED
    invoice.refresh_from_db()
    assert invoice.penalty > 0
    return invoice


def test_finance_records_a_payment_and_sees_the_penalty_change_after_the_run(
    new_page, fiona, overdue
):
    paid_on = timezone.localdate() - timedelta(days=20)
    page = new_page()
    sign_in(page, "fiona")
    page.wait_for_url("**/")
    page.goto("/invoices/?bucket=31-60")
    assert "INV-OVERDUE" in page.locator("#invoices").inner_text()
    page.click("#invoices >> text=INV-OVERDUE")
    page.wait_for_url(f"**/invoices/{overdue.pk}/")
    before = page.locator("#penalty").inner_text()
    assert before == money(overdue.penalty, "EUR")

    page.fill("#id_amount", "400.00")
    page.fill("#id_paid_on", paid_on.isoformat())
    page.click("#payment-form button[type=submit]")

    page.wait_for_url(f"**/invoices/{overdue.pk}/")
    assert page.locator("#debt").inner_text() == "600.00 EUR"
    assert "Tonight's penalty run corrects" in page.locator("main").inner_text()
    assert page.locator("#penalty").inner_text() == before  # not until the run
    assert Payment.objects.get(invoice=overdue).amount == D(400)

    assert run_job("finance_penalties", timezone.now()).status == JobRun.Status.SUCCEEDED
    page.reload()

    after = Invoice.objects.get(pk=overdue.pk).penalty
    # 400 less for the 20 days after the payment day: 400 x 10 % x 20 / 365 = 2.19 less.
    assert after == overdue.penalty - D("2.19")
    assert page.locator("#penalty").inner_text() == money(after, "EUR") != before
    assert "400.00 EUR" in page.locator("#payments").inner_text()
