"""The dashboard's cards, the notification list's rows and the full lists' rows are Jinja2
templates (crm.templating), and so are the task and stage forms htmx swaps back in: every form
they hold carries a CSRF field that gets a post through a client that checks CSRF, one field
made once for the render (as Django's {% csrf_token %} is), not masked anew for each form."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Opportunity, Task
from notifications import services
from tests.clients import HTMX, logged_in
from tests.factories import OpportunityFactory, TaskFactory

FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def fields_in_content(html: str) -> list[str]:
    """The CSRF fields of the page's content (the navigation's log-out form is Django's)."""
    return FIELD.findall(html.split("<main", 1)[1])


@pytest.fixture
def deal(rita):
    return OpportunityFactory(owner=rita, name="Acme renewal", stage="proposal")


@pytest.fixture
def tasks(rita):
    now = timezone.now()
    return [TaskFactory(owner=rita, due_at=now - timedelta(hours=n)) for n in range(3)]


@pytest.fixture
def reminders(rita, deal):
    now = timezone.now()
    return [
        services.add_reminder(
            rita, "opportunity", deal.pk, now - timedelta(minutes=n), f"Ask again ({n})", now
        )
        for n in range(2)
    ]


@pytest.mark.django_db
def test_the_dashboards_forms_share_one_field_that_passes_the_check(rita, tasks, reminders):
    client = logged_in(rita, enforce_csrf_checks=True)

    found = fields_in_content(client.get("/").content.decode())
    # Three tasks' Done, and each reminder's snooze and stage forms.
    assert len(found) == 7
    assert len(set(found)) == 1
    response = client.post(
        f"/tasks/{tasks[0].pk}/complete", {"csrfmiddlewaretoken": found[0], "next": "/"}
    )
    assert response.status_code == 302
    assert Task.objects.get(pk=tasks[0].pk).status == Task.Status.DONE


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/notifications/", "/opportunities/"])
def test_the_lists_forms_carry_a_field_that_passes_the_check(rita, deal, reminders, url):
    client = logged_in(rita, enforce_csrf_checks=True)

    found = fields_in_content(client.get(url).content.decode())
    assert found and len(set(found)) == 1
    response = client.post(
        f"/opportunities/{deal.pk}/update",
        {"csrfmiddlewaretoken": found[0], "stage": "negotiation", "next": url},
    )
    assert response.status_code == 302
    assert Opportunity.objects.get(pk=deal.pk).stage == "negotiation"


@pytest.mark.django_db
def test_a_form_htmx_swaps_back_in_carries_a_field_that_passes_the_check(rita, deal):
    client = logged_in(rita, enforce_csrf_checks=True)
    url = f"/opportunities/{deal.pk}/update"
    [first] = fields_in_content(client.get("/opportunities/").content.decode())

    swapped = client.post(url, {"csrfmiddlewaretoken": first, "stage": "negotiation"}, headers=HTMX)
    [again] = FIELD.findall(swapped.content.decode())
    back = client.post(url, {"csrfmiddlewaretoken": again, "stage": "proposal"}, headers=HTMX)

    assert swapped.status_code == back.status_code == 200
    assert Opportunity.objects.get(pk=deal.pk).stage == "proposal"
