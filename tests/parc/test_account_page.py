"""The account page, the one place for an account: its contacts, open opportunities, open tasks,
upcoming events, dispatches, PARC agreements with their visits, invoices with their penalties
and email threads, each section capped so the page reads as many rows whatever the account
holds; buttons to add a contact, an opportunity, a task or an event to it, and to edit it. The
old PARC page of an account leads there for good."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.models import Dispatch, Opportunity, Task
from parc import views
from parc.models import Agreement, ParcVisit
from tests.clients import logged_in
from tests.factories import (
    AccountFactory,
    ContactFactory,
    DispatchFactory,
    EventFactory,
    InvoiceFactory,
    OpportunityFactory,
    TaskFactory,
    TeamFactory,
    UserFactory,
)
from tests.mailsync.test_email_list import mail, mailbox_of


@pytest.fixture
def north(db):
    return TeamFactory(name="North")


@pytest.fixture
def manny(north):
    return UserFactory(username="manny", first_name="Manny", role="manager", team=north)


@pytest.fixture
def rita(north):
    return UserFactory(username="rita", first_name="Rita", role="rep", team=north)


@pytest.fixture
def acme(north, manny):
    return AccountFactory(name="Acme", team=north, account_manager=manny)


@pytest.fixture
def inspectors(db):
    return TeamFactory(name="Inspectors", kind="visiting")


def fill(account, owner, inspectors, rows: int, tag: str = "") -> None:
    """`rows` of every kind the account page shows, and as many that it must not show."""
    now = timezone.now()
    box = mailbox_of(owner, f"{owner.username}{tag}@vigil.example")
    agreement_plans = []
    for n in range(rows):
        contact = ContactFactory(
            account=account, name=f"Contact{tag} {n}", email=f"c{tag}{n}@acme.example"
        )
        OpportunityFactory(account=account, owner=owner, name=f"Open deal{tag} {n}")
        OpportunityFactory(account=account, owner=owner, name=f"Won deal{tag} {n}", stage="won")
        TaskFactory(account=account, owner=owner, title=f"Open task{tag} {n}")
        TaskFactory(account=account, owner=owner, title=f"Done task{tag} {n}", status="done")
        EventFactory(account=account, owner=owner, title=f"Coming event{tag} {n}")
        EventFactory(
            account=account,
            owner=owner,
            title=f"Past event{tag} {n}",
            start_at=now - timedelta(days=2),
            end_at=now - timedelta(days=1),
        )
        DispatchFactory(account=account, owner=owner, team=inspectors, title=f"Visit{tag} {n}")
        InvoiceFactory(
            account=account,
            number=f"INV{tag}-{n}",
            debt=Decimal("60.00"),
            days_overdue=40,
            penalty=Decimal("3.25"),
        )
        mail(box, f"Floor plan{tag} {n}", sender=contact.email)
        agreement_plans.append(f"FREQ=WEEKLY;INTERVAL={n + 1};BYDAY=TU")
    for plan in agreement_plans:
        agreement = Agreement.objects.create(
            account=account,
            visiting_team=inspectors,
            plan=plan,
            first_visit=date(2027, 1, 5),
            opportunity_amount=1,
        )
        ParcVisit.objects.bulk_create(
            ParcVisit(
                agreement=agreement,
                visit_date=date(2027, 1, 5) + timedelta(weeks=w),
                generated_at=now,
            )
            for w in range(rows)
        )


def page_of(user, account) -> str:
    response = logged_in(user).get(f"/accounts/{account.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_every_section_shows_what_is_open_or_coming_and_links_to_it(manny, acme, inspectors):
    fill(acme, manny, inspectors, rows=1)

    page = page_of(manny, acme)

    for shown in (
        "Contact 0",
        "Open deal 0",
        "Open task 0",
        "Coming event 0",
        "Visit 0",
        "INV-0",
        "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU",
        "Tue 5 Jan 2027",
        "Floor plan 0",
    ):
        assert shown in page, shown
    for hidden in ("Won deal 0", "Done task 0", "Past event 0"):
        assert hidden not in page, hidden
    opportunity = Opportunity.objects.get(name="Open deal 0")
    task = Task.objects.get(title="Open task 0")
    for url in (
        reverse("opportunity_detail", args=[opportunity.pk]),
        reverse("task_detail", args=[task.pk]),
        reverse("event_detail", args=[acme.event_set.get(title="Coming event 0").pk]),
        reverse("dispatch_detail", args=[Dispatch.objects.get().pk]),
        reverse("invoice_detail", args=[acme.invoices.get().pk]),
        reverse("backlog:account", args=[acme.pk]),
    ):
        assert f'href="{url}"' in page, url


def test_invoices_show_their_debt_and_penalty_owed_first(manny, acme):
    InvoiceFactory(account=acme, number="PAID-1", debt=Decimal("0.00"))
    InvoiceFactory(
        account=acme,
        number="LATE-1",
        debt=Decimal("80.00"),
        days_overdue=45,
        penalty=Decimal("4.10"),
    )

    page = page_of(manny, acme)

    assert page.index("LATE-1") < page.index("PAID-1")
    assert "4.10" in page and "45 days" in page


def test_contacts_link_to_the_contact_page(manny, acme):
    contact = ContactFactory(account=acme, name="Ana")

    assert f'<a href="/contacts/{contact.pk}/">Ana</a>' in page_of(manny, acme)


def test_the_buttons_add_records_to_this_account_and_edit_it(manny, rita, acme):
    page = page_of(manny, acme)

    for url in ("/contacts/new", "/opportunities/new", "/tasks/new", "/events/new"):
        assert f'href="{url}?account={acme.pk}"' in page, url
    assert f'href="/accounts/{acme.pk}/edit"' in page
    assert f"/accounts/{acme.pk}/edit" not in page_of(rita, acme)  # not hers to edit


def test_finance_gets_no_button_to_add_or_edit(north, acme):
    fiona = UserFactory(username="fiona", role="finance", team=north)
    acme.account_manager = fiona  # even on an account of hers
    acme.save()

    page = page_of(fiona, acme)

    for url in ("/contacts/new", "/opportunities/new", "/tasks/new", "/events/new"):
        assert url not in page, url
    assert f"/accounts/{acme.pk}/edit" not in page


def test_each_section_shows_its_first_rows_and_says_there_are_more(
    manny, acme, inspectors, monkeypatch
):
    monkeypatch.setattr(views, "SECTION", 2)
    fill(acme, manny, inspectors, rows=3)

    page = page_of(manny, acme)

    for first, third in (
        ("Contact 0", "Contact 2"),
        ("Open deal 0", "Open deal 2"),
        ("Open task 0", "Open task 2"),
        ("INTERVAL=1;", "INTERVAL=3;"),
    ):
        assert first in page and third not in page, first
    # opportunities, tasks, events, dispatches, PARC agreements
    assert page.count("the first 2") == 5
    for listed in ("contacts", "invoices"):  # the lists that exist, filtered to the account
        assert f'href="/{listed}/?account={acme.pk}">first 2; all →</a>' in page, listed
    assert 'href="/parc' not in page
    assert "The latest 2 visits." in page


def test_a_rep_sees_the_teams_account_others_nothing(manny, rita, acme, inspectors):
    fill(acme, manny, inspectors, rows=1)
    south = TeamFactory(name="South")
    for role in ("rep", "manager"):
        stranger = UserFactory(username=f"sam_{role}", role=role, team=south)
        assert logged_in(stranger).get(f"/accounts/{acme.pk}/").status_code == 404

    assert "Open deal 0" in page_of(rita, acme)


def test_another_teams_records_on_the_account_stay_hidden(manny, acme, inspectors):
    sam = UserFactory(username="sam", role="rep", team=TeamFactory(name="South"))
    OpportunityFactory(account=acme, owner=sam, name="Southern deal")
    TaskFactory(account=acme, owner=sam, title="Southern task")
    EventFactory(account=acme, owner=sam, title="Southern event")
    OpportunityFactory(account=acme, owner=manny, name="Northern deal")

    page = page_of(manny, acme)

    assert "Southern" not in page and "Northern deal" in page


@pytest.mark.parametrize("rows", [1, 25])
def test_the_page_runs_a_constant_number_of_queries(
    rows, manny, acme, inspectors, django_assert_num_queries
):
    fill(acme, manny, inspectors, rows=rows)
    client = logged_in(manny)
    client.get(f"/accounts/{acme.pk}/")  # the session is warm, as on every page after the first

    # session, user, blocking gate, the account; contacts, opportunities, tasks, events,
    # dispatches, agreements and their visits, invoices; the account's addresses (its
    # contacts', those linked by hand) and their threads
    with django_assert_num_queries(15):
        response = client.get(f"/accounts/{acme.pk}/")
    assert response.status_code == 200
    assert len(response.context["contacts"].rows) == min(rows, views.SECTION)


def test_the_old_parc_page_redirects_for_good(manny, acme):
    response = logged_in(manny).get(f"/parc/accounts/{acme.pk}/")

    assert response.status_code == 301
    assert response["Location"] == f"/accounts/{acme.pk}/"
    assert reverse("parc:account_agreements", args=[acme.pk]) == f"/parc/accounts/{acme.pk}/"
    assert reverse("parc:account", args=[acme.pk]) == f"/accounts/{acme.pk}/"


def test_the_list_and_the_object_pages_link_to_the_account_page(manny, acme):
    task = TaskFactory(account=acme, owner=manny)
    client = logged_in(manny)

    assert f'href="/accounts/{acme.pk}/"' in client.get("/accounts/").content.decode()
    assert (
        f'<a href="/accounts/{acme.pk}/">Acme</a>'
        in client.get(f"/tasks/{task.pk}/").content.decode()
    )
