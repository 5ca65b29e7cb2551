"""Converting a lead makes an account (its company), a contact (the lead) and an opportunity,
all at once, and moves the lead to Converted with an audited move."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from crm.models import RPH, Account, Contact, LeadStatusChange, Opportunity
from nurture.models import Enrollment
from tests.clients import logged_in
from tests.factories import LeadFactory, TeamFactory, UserFactory
from tests.nurture.conftest import make_sequence

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
FORM = {
    "account_name": "Acme Media",
    "opportunity_name": "Acme: spring campaign",
    "amount": "12000.50",
    "expected_close": "2026-04-30",
}


@pytest.fixture
def lead(rita):
    return LeadFactory(
        name="Ana Lopez",
        company="Acme Media",
        email="ana@acme.example",
        owner=rita,
        status=RPH.Status.CONTACTED,
        status_changed_at=NOW - timedelta(days=3),
    )


def convert(client, lead, form=FORM):
    with time_machine.travel(NOW, tick=False):
        return client.post(f"/leads/{lead.pk}/convert", form)


def test_the_form_offers_the_company_and_a_close_date(rita, lead):
    page = logged_in(rita).get(f"/rph/{lead.pk}/").content.decode()
    assert f'href="/leads/{lead.pk}/convert"' in page

    with time_machine.travel(NOW, tick=False):
        form = logged_in(rita).get(f"/leads/{lead.pk}/convert").content.decode()

    assert 'value="Acme Media"' in form and 'value="2026-04-09"' in form


def test_converting_makes_account_contact_and_opportunity(rita, lead, north):
    response = convert(logged_in(rita), lead)

    account = Account.objects.get()
    contact = Contact.objects.get()
    opportunity = Opportunity.objects.get()
    assert response["Location"] == f"/opportunities/{opportunity.pk}/"
    assert (account.name, account.team, account.account_manager) == ("Acme Media", north, rita)
    assert (contact.account, contact.name, contact.email) == (account, "Ana Lopez", lead.email)
    assert (opportunity.account, opportunity.owner, opportunity.amount) == (
        account,
        rita,
        Decimal("12000.50"),
    )
    assert opportunity.expected_close == date(2026, 4, 30)
    lead.refresh_from_db()
    assert (lead.status, lead.contact, lead.status_changed_at) == ("converted", contact, NOW)
    change = LeadStatusChange.objects.get()
    assert (change.by, change.from_status, change.to_status) == (rita, "contacted", "converted")


def test_a_lead_that_is_a_contact_already_keeps_it_and_its_account(rita, lead, north):
    globex = Account.objects.create(name="Globex", team=north, account_manager=rita)
    ana = Contact.objects.create(account=globex, name="Ana L.", email="ana@globex.example")
    RPH.objects.filter(pk=lead.pk).update(contact=ana)

    convert(logged_in(rita), lead)

    assert list(Account.objects.all()) == [globex] and list(Contact.objects.all()) == [ana]
    assert Opportunity.objects.get().account == globex
    lead.refresh_from_db()
    assert (lead.status, lead.contact) == ("converted", ana)


def test_converting_a_lead_in_nurture_p2_stops_its_sequence(rita, lead):
    make_sequence()
    RPH.objects.filter(pk=lead.pk).update(status=RPH.Status.NURTURE_P2)
    lead.refresh_from_db()

    convert(logged_in(rita), lead)

    assert Enrollment.objects.get().status == Enrollment.Status.STOPPED


def test_bad_input_converts_nothing_and_says_why_per_field(rita, lead):
    response = convert(logged_in(rita), lead, {**FORM, "amount": "-1", "expected_close": "someday"})

    page = response.content.decode()
    assert response.status_code == 400
    assert page.count('class="message error form-error"') == 2
    assert "Amount: Ensure this value is greater than or equal to 0." in page
    assert 'value="Acme: spring campaign"' in page
    assert not Account.objects.exists() and RPH.objects.get().status == "contacted"


def test_a_converted_lead_is_not_converted_twice(rita, lead):
    client = logged_in(rita)
    convert(client, lead)

    again = convert(client, lead)

    assert again.status_code == 400 and "already converted" in again.content.decode()
    assert Account.objects.count() == 1


def test_only_who_may_change_the_lead_converts_it(lead, north):
    teammate = UserFactory(username="ravi", role="rep", team=north)
    stranger = UserFactory(username="sam", role="manager", team=TeamFactory(name="South"))

    assert convert(logged_in(teammate), lead).status_code == 403
    assert convert(logged_in(stranger), lead).status_code == 404
    assert not Account.objects.exists()
