"""The admin's lists at a million rows: a list is counted no further than ADMIN_COUNT_CAP rows
(shown "10,000+"), never counted again whole beside a filter; the tables that grow with the
business filter by date in the side bar instead of a date hierarchy (which reads every row's
date on every page); a team filter reads the teams, not the rows; the default order of a big
table is one an index holds."""

import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm import admin as crm_admin
from crm.models import RPH, Account, Contact, Dispatch, Event, Opportunity, Task, Team
from finance.invoice_list import ORDER
from finance.models import Invoice, Payment
from mailsync.models import BacklogEmail, OutboxMessage, Suppression
from notifications.models import AuditEvent, Notification, OverdueAlert
from tests.factories import AccountFactory, ContactFactory, InvoiceFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

CONTACTS = reverse("admin:crm_contact_changelist")
# The tables that grow with the business (a row per lead, email, alert, payment…).
GROWING = [
    RPH,
    Opportunity,
    Task,
    Event,
    Dispatch,
    Invoice,
    Payment,
    Notification,
    AuditEvent,
    OverdueAlert,
    OutboxMessage,
    Suppression,
    BacklogEmail,
]


def counts(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]


@pytest.fixture
def five_contacts(client, administrator, monkeypatch):
    monkeypatch.setattr(crm_admin, "ADMIN_COUNT_CAP", 3)
    client.force_login(administrator)
    account = AccountFactory(name="Acme")
    for name in ("Ann", "Bo", "Cy", "Di", "Ed"):
        ContactFactory(name=name, account=account, status="rejected" if name == "Ed" else "new")
    return client


def test_a_list_longer_than_the_cap_says_so_and_is_counted_no_further(five_contacts, monkeypatch):
    monkeypatch.setattr(admin.site._registry[Contact], "list_per_page", 2)
    with CaptureQueriesContext(connection) as captured:
        response = five_contacts.get(CONTACTS)

    assert response.context["cl"].result_count == 3
    assert str(response.context["cl"].result_count) == "3+"
    assert "3+ contacts" in response.content.decode()
    assert len(counts(captured)) == 1 and "LIMIT 4" in counts(captured)[0]
    assert five_contacts.get(CONTACTS, {"p": 2}).status_code == 200  # the pages end at the cap
    assert five_contacts.get(CONTACTS, {"p": 3})["Location"].endswith("?e=1")


def test_a_list_within_the_cap_is_counted_exactly(five_contacts, monkeypatch):
    monkeypatch.setattr(crm_admin, "ADMIN_COUNT_CAP", 10)

    response = five_contacts.get(CONTACTS)

    assert response.context["cl"].result_count == 5
    assert str(response.context["cl"].result_count) == "5"
    assert "5 contacts" in response.content.decode()


def test_a_filtered_list_does_not_count_the_whole_table_beside_it(five_contacts):
    with CaptureQueriesContext(connection) as captured:
        response = five_contacts.get(CONTACTS, {"status__exact": "rejected"})

    assert [contact.name for contact in response.context["cl"].result_list] == ["Ed"]
    assert len(counts(captured)) == 1 and "WHERE" in counts(captured)[0]
    # Nor are each filter's choices counted, asked or not.
    assert "Show counts" not in response.content.decode()
    with CaptureQueriesContext(connection) as captured:
        five_contacts.get(CONTACTS, {"status__exact": "rejected", "_facets": "True"})
    assert len(counts(captured)) == 1


@pytest.mark.parametrize("model", GROWING, ids=lambda model: model.__name__)
def test_a_growing_table_filters_by_date_without_reading_every_date(client, administrator, model):
    model_admin = admin.site._registry[model]
    client.force_login(administrator)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")

    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)

    assert response.status_code == 200
    assert model_admin.date_hierarchy is None
    dates = [f for f in model_admin.list_filter if isinstance(f, str)]
    field = model._meta.get_field(dates[-1])
    assert field.get_internal_type() in ("DateField", "DateTimeField")
    assert "Past 7 days" in response.content.decode()
    sql = " ".join(q["sql"] for q in captured.captured_queries).upper()
    assert not re.search(r"DATE_TRUNC|DJANGO_DATE_TRUNC|MIN\(|MAX\(", sql)


def test_invoices_are_filtered_by_their_voucher_date(client, administrator):
    client.force_login(administrator)
    today = timezone.localdate()
    InvoiceFactory(number="INV-OLD", voucher_date=today - timedelta(days=400))
    InvoiceFactory(number="INV-NEW", voucher_date=today)
    url = reverse("admin:finance_invoice_changelist")

    response = client.get(
        url,
        {
            "voucher_date__gte": str(today - timedelta(days=7)),
            "voucher_date__lt": str(today + timedelta(days=1)),
        },
    )

    assert [invoice.number for invoice in response.context["cl"].result_list] == ["INV-NEW"]


def test_invoices_are_listed_past_due_first_in_the_order_their_index_holds(client, administrator):
    client.force_login(administrator)
    today = timezone.localdate()
    overdue = InvoiceFactory(number="INV-OVERDUE", voucher_date=today - timedelta(days=60))
    later = InvoiceFactory(number="INV-LATER", voucher_date=today)
    paid = InvoiceFactory(number="INV-PAID", voucher_date=today - timedelta(days=90), debt=0)

    response = client.get(reverse("admin:finance_invoice_changelist"))

    listed = [invoice.number for invoice in response.context["cl"].result_list]
    assert listed == ["INV-OVERDUE", "INV-LATER", "INV-PAID"]
    assert listed == [i.number for i in Invoice.objects.order_by(*ORDER)]
    assert {paid.pk, later.pk, overdue.pk} == {i.pk for i in response.context["cl"].result_list}


def test_a_team_filter_offers_the_teams_a_user_may_see_read_from_the_teams(client):
    north, south = TeamFactory(name="North Sales"), TeamFactory(name="South Sales")
    TeamFactory(name="Visitors", kind=Team.Kind.VISITING)
    TeamFactory(name="Empty Sales")  # no account: offered to an administrator all the same
    manager = UserFactory(username="sam", role="manager", team=south, is_staff=True)
    manager.user_permissions.set(Permission.objects.filter(codename="view_account"))
    AccountFactory(name="North Co", team=north)
    AccountFactory(name="South Co", team=south)
    client.force_login(manager)
    url = reverse("admin:crm_account_changelist")

    with CaptureQueriesContext(connection) as captured:
        page = client.get(url).content.decode()

    assert "South Sales" in page and "Visitors" in page
    assert "North Sales" not in page and "Empty Sales" not in page
    team_queries = [q["sql"] for q in captured.captured_queries if 'FROM "crm_team"' in q["sql"]]
    assert team_queries and not any('"crm_account"' in sql for sql in team_queries)
    assert Account.objects.count() == 2
