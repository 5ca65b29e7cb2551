"""Changing an invoice in the admin: only what the form changed is written, so a payment or a
penalty run between the page's loading and its saving stands; finance changes any team's
invoice and account policy, and the default policy stays the administrators'."""

from datetime import date
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth.models import Permission

from finance.admin import InvoiceAdmin
from finance.models import Invoice, Payment, PenaltyPolicy
from finance.services import record_payment
from tests.clients import logged_in
from tests.factories import AccountFactory, TeamFactory, UserFactory
from tests.finance.conftest import due

D = Decimal


def change_url(invoice) -> str:
    return f"/admin/finance/invoice/{invoice.pk}/change/"


def as_loaded(client, url: str, inline: str | None = "payments") -> dict:
    """The change form's data as the page shows it (what a user submits untouched)."""
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        data[name] = "" if value is None else getattr(value, "pk", value)
    if inline:
        data |= {f"{inline}-TOTAL_FORMS": "0", f"{inline}-INITIAL_FORMS": "0"}
    return data


def with_payment(data: dict, amount: str, paid_on: str = "2026-03-01", n: int = 0) -> dict:
    return data | {
        "payments-TOTAL_FORMS": str(n + 1),
        f"payments-{n}-amount": amount,
        f"payments-{n}-paid_on": paid_on,
    }


@pytest.fixture
def finn(db):
    """Finance, of North, with the finance models' admin permissions."""
    user = UserFactory(username="finn", role="finance", team=TeamFactory(name="North"))
    user.is_staff = True
    user.save()
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="finance"))
    return user


@pytest.fixture
def southco(db):
    return AccountFactory(name="Southco", team=TeamFactory(name="South"))


@pytest.mark.django_db
def test_a_payment_and_a_penalty_run_between_loading_and_saving_are_not_written_back(
    now, administrator, acme
):
    invoice = due(acme, 20, number="A-1", debt="100.00", amount=D("100.00"))
    client = logged_in(administrator)
    data = as_loaded(client, change_url(invoice)) | {"number": "A-1b"}
    loaded = InvoiceAdmin.get_object

    def loaded_then_paid(self, request, object_id, from_field=None):
        obj = loaded(self, request, object_id, from_field)
        if request.method == "POST":  # meanwhile: the invoice page, then the penalty job
            record_payment(Invoice.objects.get(pk=obj.pk), D(40), date(2026, 3, 1), now)
            Invoice.objects.filter(pk=obj.pk).update(
                penalty=D("5.00"), penalty_parts=D(5), penalty_through_day=20000
            )
        return obj

    with mock.patch.object(InvoiceAdmin, "get_object", loaded_then_paid):
        saved = client.post(change_url(invoice), data)

    assert saved.status_code == 302
    invoice.refresh_from_db()
    assert invoice.number == "A-1b"
    assert (invoice.debt, invoice.penalty, invoice.penalty_through_day) == (D(60), D(5), 20000)


@pytest.mark.django_db
def test_an_unchanged_form_writes_nothing(now, administrator, acme):
    invoice = due(acme, 20, number="A-1")
    client = logged_in(administrator)
    data = as_loaded(client, change_url(invoice))
    Invoice.objects.filter(pk=invoice.pk).update(debt=D(7))  # after the page was loaded

    assert client.post(change_url(invoice), data).status_code == 302
    assert Invoice.objects.get(pk=invoice.pk).debt == D(7)


@pytest.mark.django_db
def test_finance_changes_another_teams_invoice_and_records_a_payment_on_it(now, finn, southco):
    invoice = due(southco, 20, number="S-1", debt="100.00")
    client = logged_in(finn)
    data = as_loaded(client, change_url(invoice)) | {"payment_terms_days": "45"}

    saved = client.post(change_url(invoice), with_payment(data, "10.00"))

    assert saved.status_code == 302
    invoice.refresh_from_db()
    assert (invoice.account, invoice.payment_terms_days, invoice.debt) == (southco, 45, D(90))
    assert invoice.payments.get().amount == D(10)


@pytest.mark.django_db
def test_a_saved_invoice_keeps_its_account(now, administrator, acme, southco):
    invoice = due(acme, 20, number="A-1")
    client = logged_in(administrator)
    data = as_loaded(client, change_url(invoice))
    assert "account" not in data

    data["account"] = southco.pk
    assert client.post(change_url(invoice), data).status_code == 302
    assert Invoice.objects.get(pk=invoice.pk).account == acme


@pytest.mark.django_db
def test_finance_changes_another_teams_policy_but_not_the_default_one(
    now, finn, administrator, southco
):
    default = PenaltyPolicy.objects.create(name="Default", annual_rate=D(8))
    south = PenaltyPolicy.objects.create(name="Southco's", account=southco, annual_rate=D(5))
    client = logged_in(finn)
    url = f"/admin/finance/penaltypolicy/{south.pk}/change/"
    data = as_loaded(client, url, inline=None) | {"annual_rate": "6"}

    assert client.post(url, data).status_code == 302
    south.refresh_from_db()
    assert (south.annual_rate, south.account) == (D(6), southco)
    listed = client.get("/admin/finance/penaltypolicy/").context["cl"].result_list
    assert list(listed) == [south]
    assert client.get(f"/admin/finance/penaltypolicy/{default.pk}/change/").status_code == 302
    assert (
        logged_in(administrator).get("/admin/finance/penaltypolicy/").context["cl"].result_count
        == 2
    )


@pytest.mark.django_db
def test_finance_cannot_add_a_default_policy(now, finn):
    added = logged_in(finn).post(
        "/admin/finance/penaltypolicy/add/",
        {
            "name": "Mine",
            "account": "",
            "grace_days": "0",
            "annual_rate": "1",
            "fixed_fee": "0",
            "fee_period_days": "30",
        },
    )

    assert added.status_code == 200 and "account" in added.context["adminform"].form.errors
    assert not PenaltyPolicy.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "amount, paid_on, error",
    [
        ("5.00", "2099-01-01", "A payment cannot be in the future (today is 2026-03-15)."),
        ("5.00", "2026-03-16", "A payment cannot be in the future (today is 2026-03-15)."),
        ("5.00", "1999-12-31", "A payment cannot be before 2000-01-01."),
        ("0", "2026-03-01", "A payment cannot be zero."),
        ("0.001", "2026-03-01", "0.001 has more decimals than EUR allows (2)."),
    ],
)
def test_the_admin_refuses_the_payments_the_invoice_page_refuses(
    now, administrator, acme, amount, paid_on, error
):
    invoice = due(acme, 20, number="A-1", debt="100.00")
    client = logged_in(administrator)
    data = with_payment(as_loaded(client, change_url(invoice)), amount, paid_on)

    inline = client.post(change_url(invoice), data)
    alone = client.post(
        "/admin/finance/payment/add/", {"invoice": invoice.pk, "amount": amount, "paid_on": paid_on}
    )

    assert inline.status_code == alone.status_code == 200
    assert error in inline.content.decode() and error in alone.content.decode()
    assert error in str(alone.context["adminform"].form.errors)
    assert not Payment.objects.exists() and Invoice.objects.get(pk=invoice.pk).debt == D(100)


BIG_REFUND = "-999999999999.99"
TOO_BIG = "This payment would leave a debt of"


@pytest.mark.django_db
def test_refunds_that_would_overflow_the_debt_are_refused_in_the_admin(now, administrator, acme):
    invoice = due(acme, 20, number="A-1", debt="0")
    client = logged_in(administrator)
    data = as_loaded(client, change_url(invoice))
    both = with_payment(with_payment(data, BIG_REFUND), BIG_REFUND, n=1)

    together = client.post(change_url(invoice), both)
    first = client.post(change_url(invoice), with_payment(data, BIG_REFUND))
    second = client.post(change_url(invoice), with_payment(data, BIG_REFUND))
    alone = client.post(
        "/admin/finance/payment/add/",
        {"invoice": invoice.pk, "amount": BIG_REFUND, "paid_on": "2026-03-01"},
    )

    assert together.status_code == 200 and TOO_BIG in together.content.decode()
    assert first.status_code == 302
    assert second.status_code == alone.status_code == 200
    assert TOO_BIG in second.content.decode() and TOO_BIG in alone.content.decode()
    assert Invoice.objects.get(pk=invoice.pk).debt == D("999999999999.99")
    assert Payment.objects.count() == 1


HOSTILE_AMOUNTS = [
    "1E+999999999",
    "1e-999999999",
    "NaN",
    "Infinity",
    "-0",
    "1" * 40,
    "\x00",
    "1e5000",
    "9" * 10_000,
]
HOSTILE_DATES = ["9999-12-31", "2026-02-30", "x", "\x00", "9" * 10_000]


@pytest.mark.django_db
@pytest.mark.parametrize("amount", HOSTILE_AMOUNTS)
def test_hostile_payment_amounts_in_the_admin_get_an_error(now, administrator, acme, amount):
    invoice = due(acme, 20, number="A-1", debt="100.00")
    client = logged_in(administrator)
    data = as_loaded(client, change_url(invoice))

    inline = client.post(change_url(invoice), with_payment(data, amount))
    alone = client.post(
        "/admin/finance/payment/add/",
        {"invoice": invoice.pk, "amount": amount, "paid_on": "2026-03-01"},
    )

    assert inline.status_code == alone.status_code == 200
    assert not Payment.objects.exists() and Invoice.objects.get(pk=invoice.pk).debt == D(100)


@pytest.mark.django_db
@pytest.mark.parametrize("paid_on", ["0001-01-01", *HOSTILE_DATES])
def test_hostile_payment_dates_in_the_admin_get_an_error(now, administrator, acme, paid_on):
    invoice = due(acme, 20, number="A-1", debt="100.00")
    client = logged_in(administrator)
    data = as_loaded(client, change_url(invoice))

    inline = client.post(change_url(invoice), with_payment(data, "5.00", paid_on))
    alone = client.post(
        "/admin/finance/payment/add/", {"invoice": invoice.pk, "amount": "5", "paid_on": paid_on}
    )

    assert inline.status_code == alone.status_code == 200
    assert not Payment.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field, value",
    [
        *[("amount", amount) for amount in HOSTILE_AMOUNTS if amount != "-0"],
        *[("voucher_date", day) for day in HOSTILE_DATES],
        ("number", "N" * 41),
        ("number", "N\x00"),
        ("number", "N" * 10_000),
        ("payment_terms_days", "-1"),
        ("payment_terms_days", "99999999999999999999"),
        ("payment_terms_days", "x"),
    ],
)
def test_hostile_invoice_fields_in_the_admin_get_an_error(now, administrator, acme, field, value):
    invoice = due(acme, 20, number="A-1", debt="100.00")
    client = logged_in(administrator)
    data = as_loaded(client, change_url(invoice))

    changed = client.post(change_url(invoice), data | {field: value})
    new = {"number": "NEW", "account": acme.pk, "currency": "EUR", "debt": "1"}
    added = client.post("/admin/finance/invoice/add/", data | new | {field: value})

    assert changed.status_code == added.status_code == 200
    assert Invoice.objects.get().number == "A-1"


@pytest.mark.django_db
def test_the_invoice_number_at_its_maximum_length_in_the_admin(now, administrator, acme):
    invoice = due(acme, 20, number="A-1")
    client = logged_in(administrator)
    data = as_loaded(client, change_url(invoice)) | {"number": "N" * 40}

    assert client.post(change_url(invoice), data).status_code == 302
    assert Invoice.objects.get().number == "N" * 40
