"""A rep's dashboard in Chromium at 800 px: today's work above older work, and the "N more"
link leading to the full list with the dashboard's visibility."""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications import lists, services
from tests.browser.conftest import sign_in
from tests.factories import OpportunityFactory, TaskFactory, TeamFactory, UserFactory


@pytest.fixture
def rita(transactional_db):
    north = TeamFactory(name="North")
    rita = UserFactory(username="rita", first_name="Rita", role="rep", team=north)
    tom = UserFactory(username="tom", first_name="Tom", role="rep", team=north)
    sam = UserFactory(username="sam", role="rep", team=TeamFactory(name="South"))
    now = timezone.now()
    start_of_today, end_of_today = lists.today_bounds(now)
    for day in range(2, 18):
        TaskFactory(owner=rita, title=f"Stale task {day}", due_at=now - timedelta(days=day))
    TaskFactory(owner=rita, title="Call Acme today", due_at=end_of_today - timedelta(minutes=1))
    TaskFactory(owner=tom, title="Tom's task", due_at=now - timedelta(days=1))
    TaskFactory(owner=sam, title="Sam's task", due_at=now - timedelta(days=1))

    deal = OpportunityFactory(owner=rita, name="Acme renewal")
    for day in range(1, 13):
        services.add_reminder(rita, "opportunity", deal.pk, now - timedelta(days=day), "", now)
    today = start_of_today + (now - start_of_today) / 2
    services.add_reminder(rita, "opportunity", deal.pk, today, "Ask about the budget", now)
    return rita


def test_todays_work_comes_first_and_more_leads_to_the_full_list(new_page, rita):
    page = new_page()
    page.set_viewport_size({"width": 800, "height": 900})
    sign_in(page, "rita")
    page.wait_for_url("**/")

    assert "Call Acme today" in page.locator("#tasks tr").first.inner_text()
    assert "Ask about the budget" in page.locator("#notifications tr").first.inner_text()
    assert page.locator("#more-notifications").inner_text() == "3 more →"
    assert page.evaluate("document.documentElement.scrollWidth") <= 800

    assert page.locator("#more-tasks").inner_text() == "2 more →"  # 17 due, 15 shown
    page.click("#more-tasks")

    page.wait_for_url("**/tasks/?when=due")
    assert page.locator("#list-total").inner_text() == "(17)"
    listed = page.locator("#full-list").inner_text()
    assert "Call Acme today" in listed and "Stale task 17" in listed
    assert "Tom's task" not in listed and "Sam's task" not in listed
