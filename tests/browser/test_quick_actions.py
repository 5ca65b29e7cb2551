"""Quick actions in Chromium: "Done" on a dashboard task row completes the task in place
with JavaScript and by a plain form post without it; a blocked rep's quick action is refused
by the gate except on the blocking task; "Snooze 1 day" and "Dismiss" take a reminder's row
away in place; a deal's stage changes in place, and by a plain form post without JavaScript."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Opportunity, Task
from notifications import services
from notifications.jobs import notify_expiring
from notifications.models import Notification
from tests.browser.conftest import sign_in
from tests.factories import (
    OpportunityFactory,
    ReminderRuleFactory,
    TaskFactory,
    TeamFactory,
    UserFactory,
)


@pytest.fixture
def rita(transactional_db):
    return UserFactory(username="rita", first_name="Rita", role="rep", team=TeamFactory())


def status(task) -> str:
    return Task.objects.get(pk=task.pk).status


def test_done_completes_the_task_without_a_reload(new_page, rita):
    task = TaskFactory(owner=rita, title="Send the quote", due_at=timezone.now())
    page = new_page()
    sign_in(page, "rita")
    page.wait_for_url("**/")
    page.evaluate("window.__marker = 1")

    page.click(f"[data-complete='{task.pk}']")

    page.locator(f"[data-done='{task.pk}']").wait_for()
    assert page.evaluate("window.__marker") == 1  # the same document: no navigation
    assert page.url.endswith("/")
    assert status(task) == Task.Status.DONE


def test_done_works_with_javascript_disabled(browser, live_server, rita):
    task = TaskFactory(owner=rita, title="Send the quote", due_at=timezone.now())
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, "rita")
        page.wait_for_url("**/")

        page.click(f"[data-complete='{task.pk}']")

        page.wait_for_url("**/")
        assert "Task “Send the quote” completed." in page.locator("main").inner_text()
        assert page.locator(f"[data-done='{task.pk}']").count() == 0  # no longer due
        assert status(task) == Task.Status.DONE
    finally:
        context.close()


def test_a_blocked_rep_can_only_complete_the_blocking_task(new_page, rita):
    an_hour_ago = timezone.now() - timedelta(hours=1)
    blocking = TaskFactory(owner=rita, title="Call Acme back", due_at=an_hour_ago)
    other = TaskFactory(owner=rita, title="Send the quote", due_at=an_hour_ago)
    refused, allowed = new_page(), new_page()
    for page in (refused, allowed):  # two tabs open on the dashboard before the block
        sign_in(page, "rita")
        page.wait_for_url("**/")
    ReminderRuleFactory(
        object_kind="task", lead_time=timedelta(0), blocking=True, grace_period=timedelta(hours=24)
    )
    notify_expiring(timezone.now())
    Notification.objects.filter(object_id=other.pk).delete()  # only the first one blocks

    refused.click(f"[data-complete='{other.pk}']")
    refused.wait_for_url("**/notifications/?blocked=1")
    assert status(other) == Task.Status.OPEN

    allowed.click(f"[data-complete='{blocking.pk}']")
    allowed.locator(f"[data-done='{blocking.pk}']").wait_for()
    assert status(blocking) == Task.Status.DONE


def test_snooze_and_dismiss_remove_the_reminder_rows_without_a_reload(new_page, rita):
    now = timezone.now()
    deal = OpportunityFactory(owner=rita, name="Acme renewal")
    later = services.add_reminder(rita, "opportunity", deal.pk, now, "Ask about the budget", now)
    earlier = now - timedelta(minutes=1)
    done = services.add_reminder(rita, "opportunity", deal.pk, earlier, "Send it", earlier)
    page = new_page()
    sign_in(page, "rita")
    page.wait_for_url("**/")
    page.evaluate("window.__marker = 1")

    page.click(f"[data-snooze='{later.pk}']")
    page.click(f"[data-dismiss='{done.pk}']")

    page.locator(f"tr[data-notification='{later.pk}']").wait_for(state="detached")
    page.locator(f"tr[data-notification='{done.pk}']").wait_for(state="detached")
    assert page.evaluate("window.__marker") == 1
    later.refresh_from_db()
    done.refresh_from_db()
    assert later.visible_from > now + timedelta(hours=23)
    assert done.status == Notification.Status.RESOLVED


def stage(deal) -> str:
    return Opportunity.objects.get(pk=deal.pk).stage


def test_a_deals_stage_changes_from_the_dashboard_without_a_reload(new_page, rita):
    now = timezone.now()
    deal = OpportunityFactory(owner=rita, name="Acme renewal", stage="proposal")
    services.add_reminder(rita, "opportunity", deal.pk, now, "Ask about the budget", now)
    page = new_page()
    sign_in(page, "rita")
    page.wait_for_url("**/")
    page.evaluate("window.__marker = 1")

    page.select_option(f"select[data-stage='{deal.pk}']", "negotiation")

    page.locator(f"[data-stage-saved='{deal.pk}']").wait_for()
    assert page.evaluate("window.__marker") == 1
    assert stage(deal) == "negotiation"


def test_a_deals_stage_changes_on_the_list_with_javascript_disabled(browser, live_server, rita):
    deal = OpportunityFactory(owner=rita, name="Acme renewal", stage="proposal")
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, "rita")
        page.wait_for_url("**/")
        page.goto("/opportunities/")

        page.select_option(f"select[data-stage='{deal.pk}']", "won")
        page.locator(f"form:has(select[data-stage='{deal.pk}']) button").click()

        page.wait_for_url("**/opportunities/")
        assert "Opportunity “Acme renewal” updated." in page.locator("main").inner_text()
        assert stage(deal) == "won"
    finally:
        context.close()
