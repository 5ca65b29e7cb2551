"""An opportunity's stage changes where the rep is: on the dashboard (a reminder about the
deal) and on the full opportunities list, in place with htmx and by a plain form post without
JavaScript, behind CSRF, the usual permissions and the blocking gate."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Opportunity
from notifications import services
from notifications.models import Notification
from tests.clients import HTMX, logged_in
from tests.factories import OpportunityFactory, TeamFactory, UserFactory


@pytest.fixture
def deal(rita):
    return OpportunityFactory(owner=rita, name="Acme renewal", stage="proposal")


@pytest.fixture
def reminder(rita, deal):
    now = timezone.now()
    return services.add_reminder(rita, "opportunity", deal.pk, now, "Ask about the budget", now)


def stage(deal) -> str:
    return Opportunity.objects.get(pk=deal.pk).stage


@pytest.mark.django_db
def test_a_reminder_about_a_deal_offers_its_stage_on_the_dashboard(rita, deal, reminder):
    page = logged_in(rita).get("/").content.decode()

    assert f'hx-post="/opportunities/{deal.pk}/update"' in page
    assert '<option value="proposal" selected>Proposal</option>' in page


@pytest.mark.django_db
def test_the_opportunities_list_offers_each_deals_stage(rita, deal):
    page = logged_in(rita).get("/opportunities/").content.decode()

    assert f'data-stage="{deal.pk}"' in page
    assert '<option value="proposal" selected>Proposal</option>' in page


@pytest.mark.django_db
def test_with_htmx_the_stage_is_saved_and_its_form_comes_back(rita, deal):
    response = logged_in(rita).post(
        f"/opportunities/{deal.pk}/update", {"stage": "negotiation", "next": "/"}, headers=HTMX
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert '<option value="negotiation" selected>Negotiation</option>' in html
    assert f'data-stage-saved="{deal.pk}"' in html
    assert stage(deal) == "negotiation"


@pytest.mark.django_db
def test_without_javascript_it_goes_back_to_the_page_with_a_message(rita, deal):
    response = logged_in(rita).post(
        f"/opportunities/{deal.pk}/update",
        {"stage": "won", "next": "/opportunities/"},
        follow=True,
    )

    assert response.redirect_chain == [("/opportunities/", 302)]
    assert "Opportunity “Acme renewal” updated." in response.content.decode()
    assert stage(deal) == "won"


@pytest.mark.django_db
def test_winning_the_deal_closes_its_reminder(rita, deal, reminder):
    logged_in(rita).post(f"/opportunities/{deal.pk}/update", {"stage": "won"}, headers=HTMX)

    assert Notification.objects.get(pk=reminder.pk).status != Notification.Status.OPEN
    assert "Ask about the budget" not in logged_in(rita).get("/").content.decode()


@pytest.mark.django_db
def test_an_unknown_stage_is_refused_with_a_clear_message(rita, deal):
    htmx = logged_in(rita).post(
        f"/opportunities/{deal.pk}/update", {"stage": "bogus"}, headers=HTMX
    )
    plain = logged_in(rita).post(
        f"/opportunities/{deal.pk}/update", {"stage": "bogus", "next": "/"}, follow=True
    )

    assert htmx.status_code == 400 and "unknown stage" in htmx.content.decode()
    assert "Not saved: unknown stage" in plain.content.decode()
    assert stage(deal) == "proposal"


@pytest.mark.django_db
def test_it_needs_csrf_and_someone_who_may_change_the_deal(rita, deal):
    teammate = UserFactory(username="tom", role="rep", team=rita.team)
    stranger = UserFactory(username="sam", role="rep", team=TeamFactory(name="South"))
    url = f"/opportunities/{deal.pk}/update"

    no_csrf = logged_in(rita, enforce_csrf_checks=True).post(url, {"stage": "won"}, headers=HTMX)

    assert no_csrf.status_code == 403
    assert logged_in(teammate).post(url, {"stage": "won"}, headers=HTMX).status_code == 403
    assert logged_in(stranger).post(url, {"stage": "won"}, headers=HTMX).status_code == 404
    assert stage(deal) == "proposal"


@pytest.mark.django_db
def test_a_blocked_rep_may_only_move_the_blocking_deal(rita, boss, deal):
    other = OpportunityFactory(owner=rita, name="Other deal", stage="proposal")
    services.add_blocking(
        boss, rita, "opportunity", deal.pk, timezone.now() + timedelta(hours=4), timezone.now()
    )
    client = logged_in(rita)

    refused = client.post(f"/opportunities/{other.pk}/update", {"stage": "won"}, headers=HTMX)
    allowed = client.post(f"/opportunities/{deal.pk}/update", {"stage": "won"}, headers=HTMX)

    assert refused.status_code == 423 and refused.json()["error"] == "blocked"
    assert allowed.status_code == 200
    assert (stage(other), stage(deal)) == ("proposal", "won")
