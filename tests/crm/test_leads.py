"""The lead list ("Leads" in the navigation): the leads one may see (a rep their own, a
manager their team's, an administrator all), filtered, searched, sorted and paged without
counting everything, in a constant number of queries; and creating a lead from it."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from crm import leads, paging
from crm.models import RPH
from notifications.jobs import notify_expiring
from tests.clients import HTMX, logged_in
from tests.factories import (
    LeadFactory,
    ReminderRuleFactory,
    TaskFactory,
    TeamFactory,
    UserFactory,
)

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def ravi(north):
    return UserFactory(username="ravi", first_name="Ravi", role="rep", team=north)


@pytest.fixture
def manny(north):
    return UserFactory(username="manny", first_name="Manny", role="manager", team=north)


@pytest.fixture
def sam(db):
    return UserFactory(username="sam", role="rep", team=TeamFactory(name="South"))


def names(response) -> set[str]:
    return {lead.name for lead in response.context["page"].rows}


def test_the_navigation_links_to_leads(rita):
    page = logged_in(rita).get("/").content.decode()

    assert 'href="/leads/">Leads</a>' in page


def test_a_rep_sees_their_own_leads_a_manager_the_teams_an_admin_all(
    rita, ravi, manny, sam, administrator
):
    LeadFactory(name="Rita's", owner=rita)
    LeadFactory(name="Ravi's", owner=ravi)
    LeadFactory(name="Sam's", owner=sam)

    assert names(logged_in(rita).get("/leads/")) == {"Rita's"}
    assert names(logged_in(manny).get("/leads/")) == {"Rita's", "Ravi's"}
    assert names(logged_in(administrator).get("/leads/")) == {"Rita's", "Ravi's", "Sam's"}
    assert "Sam's" not in logged_in(manny).get("/leads/?q=Sam").content.decode()


def test_filters_by_status_source_owner_and_last_activity(rita, ravi, manny):
    LeadFactory(name="Fresh web", owner=rita, source="web", last_activity_at=NOW)
    LeadFactory(
        name="Old referral",
        owner=ravi,
        source="referral",
        status=RPH.Status.CONTACTED,
        last_activity_at=NOW - timedelta(days=45),
    )
    client = logged_in(manny)

    with time_machine.travel(NOW, tick=False):
        assert names(client.get("/leads/?status=contacted")) == {"Old referral"}
        assert names(client.get("/leads/?source=web")) == {"Fresh web"}
        assert names(client.get(f"/leads/?owner={ravi.pk}")) == {"Old referral"}
        assert names(client.get("/leads/?activity=7")) == {"Fresh web"}
        assert names(client.get("/leads/?activity=-30")) == {"Old referral"}


def test_a_rep_has_no_owner_filter_and_cannot_use_one(rita, ravi):
    LeadFactory(name="Ravi's", owner=ravi)

    response = logged_in(rita).get(f"/leads/?owner={ravi.pk}")

    assert "owner" not in response.context["form"].fields
    assert names(response) == set()


def test_search_finds_by_name_company_or_email_in_any_case(rita):
    LeadFactory(name="Ana Lopez", company="Acme", email="ana@acme.example", owner=rita)
    LeadFactory(name="Bo Berg", company="Globex Media", email="bo@globex.example", owner=rita)
    client = logged_in(rita)

    assert names(client.get("/leads/?q=lopez")) == {"Ana Lopez"}
    assert names(client.get("/leads/?q=GLOBEX m")) == {"Bo Berg"}
    assert names(client.get("/leads/?q=ana@acme")) == {"Ana Lopez"}


def test_sorts_by_activity_by_default_and_by_name_on_request(rita):
    LeadFactory(name="Bea", owner=rita, last_activity_at=NOW - timedelta(days=2))
    LeadFactory(name="Cid", owner=rita, last_activity_at=NOW - timedelta(days=1))
    LeadFactory(name="Abe", owner=rita, last_activity_at=NOW - timedelta(days=3))
    client = logged_in(rita)

    def order(query):
        return [lead.name for lead in client.get(f"/leads/{query}").context["page"].rows]

    assert order("") == ["Cid", "Bea", "Abe"]
    assert order("?sort=name") == ["Abe", "Bea", "Cid"]
    assert order("?sort=activity") == ["Abe", "Bea", "Cid"]


def test_pages_without_counting_past_the_cap(rita, monkeypatch):
    monkeypatch.setattr(leads, "PAGE_SIZE", 2)
    monkeypatch.setattr(paging, "COUNT_CAP", 3)
    for n in range(5):
        LeadFactory(name=f"Lead {n}", owner=rita, last_activity_at=NOW - timedelta(days=n))
    client = logged_in(rita)

    first = client.get("/leads/?source=")
    last = client.get("/leads/?source=&page=3")

    assert names(first) == {"Lead 0", "Lead 1"} and first.context["page"].has_next
    assert "More than 3 leads" in first.content.decode()
    assert names(last) == {"Lead 4"} and not last.context["page"].has_next
    assert 'href="?source=&amp;page=2" rel="prev"' in last.content.decode()


def test_bad_filter_values_are_named_and_the_others_still_apply(rita):
    LeadFactory(name="Ana", owner=rita, source="web")

    response = logged_in(rita).get("/leads/?source=web&status=bogus&page=0")

    assert names(response) == {"Ana"}
    page = response.content.decode()
    assert page.count('class="message error"') == 2
    assert "Ignored: Status: Select a valid choice." in page


def test_htmx_gets_only_the_rows(rita):
    LeadFactory(name="Ana", owner=rita)

    response = logged_in(rita).get("/leads/?q=an", headers=HTMX)

    body = response.content.decode()
    assert body.startswith('<section class="card" id="lead-list">') and "Ana" in body
    assert "<html" not in body and "HX-Request" in response["Vary"]


@pytest.mark.parametrize("rows", [1, 60])
def test_the_list_runs_a_constant_number_of_queries(
    rows, manny, rita, ravi, django_assert_num_queries
):
    for n in range(rows):
        LeadFactory(owner=ravi if n % 2 else rita, source="web")
    client = logged_in(manny)
    client.get("/leads/")  # the session is warm, as on every page after the first

    # session, user, blocking gate, the owner filter's user, the search's keys (its count),
    # the page's rows by key, the owner choices
    with django_assert_num_queries(7):
        response = client.get(f"/leads/?source=web&q=lead&sort=name&owner={rita.pk}")
    assert response.status_code == 200


@pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes: PostgreSQL")
@pytest.mark.django_db
def test_search_columns_have_trigram_indexes():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'crm_rph' "
            "AND indexdef LIKE '%gin_trgm_ops%'"
        )
        found = {row[0] for row in cursor.fetchall()}

    assert found == {"rph_name_trgm", "rph_company_trgm", "rph_email_trgm"}


def test_a_rep_creates_a_lead_that_is_theirs(rita):
    client = logged_in(rita, enforce_csrf_checks=False)
    assert 'href="/leads/new"' in client.get("/leads/").content.decode()

    with time_machine.travel(NOW, tick=False):
        response = client.post(
            "/leads/new",
            {
                "name": "Nina New",
                "company": "Initech",
                "email": "nina@initech.example",
                "source": "event",
            },
        )

    lead = RPH.objects.get(name="Nina New")
    assert response["Location"] == f"/rph/{lead.pk}/"
    assert (lead.owner, lead.status, lead.source) == (rita, RPH.Status.NEW, "event")
    assert lead.status_changed_at == lead.last_activity_at == NOW


def test_a_manager_gives_a_new_lead_to_someone_of_the_team_only(manny, rita, sam):
    client = logged_in(manny)

    refused = client.post("/leads/new", {"name": "X", "owner": sam.pk})
    client.post("/leads/new", {"name": "Y", "owner": rita.pk})

    assert refused.status_code == 400 and not RPH.objects.filter(name="X").exists()
    assert RPH.objects.get(name="Y").owner == rita


def test_bad_input_shows_one_line_per_error_and_keeps_what_was_typed(rita):
    response = logged_in(rita).post(
        "/leads/new", {"name": "", "company": "Kept Company", "email": "not-an-email"}
    )

    page = response.content.decode()
    assert response.status_code == 400 and not RPH.objects.exists()
    assert page.count('class="message error form-error"') == 2
    assert "Name: This field is required." in page
    assert "Email: Enter a valid email address." in page
    assert 'value="Kept Company"' in page and 'value="not-an-email"' in page


def test_creating_needs_a_csrf_token(rita):
    client = logged_in(rita, enforce_csrf_checks=True)

    response = client.post("/leads/new", {"name": "Nina"})

    assert response.status_code == 403 and not RPH.objects.exists()


def test_a_blocked_rep_reaches_neither_the_list_nor_a_lead(rita):
    ReminderRuleFactory(
        name="Task overdue", object_kind="task", lead_time=timedelta(0), blocking=True
    )
    TaskFactory(owner=rita, due_at=timezone.now() - timedelta(hours=1))
    notify_expiring(timezone.now())
    lead = LeadFactory(owner=rita)
    client = logged_in(rita)

    for response in (
        client.get("/leads/"),
        client.post("/leads/new", {"name": "Nina"}),
        client.get(f"/rph/{lead.pk}/"),
        client.post(f"/rph/{lead.pk}/status", {"to": "contacted"}),
    ):
        assert response["Location"] == "/notifications/?blocked=1"
    assert RPH.objects.get().status == RPH.Status.NEW
