"""What a person sees in a browser: login, the blocking gate, a lock-out across browsers, and
a manager unlocking."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from notifications.jobs import notify_expiring
from tests.browser.conftest import sign_in
from tests.factories import ReminderRuleFactory, TaskFactory, TeamFactory, UserFactory


@pytest.fixture
def people(transactional_db):
    team = TeamFactory(name="North")
    boss = UserFactory(
        username="boss", first_name="Bea", last_name="Boss", role="manager", team=team
    )
    rita = UserFactory(username="rita", first_name="Rita", role="rep", team=team, manager=boss)
    return rita, boss


@pytest.fixture
def blocked_task(people):
    rita, _ = people
    ReminderRuleFactory(
        name="Task overdue",
        object_kind="task",
        lead_time=timedelta(0),
        blocking=True,
        grace_period=timedelta(hours=24),
    )
    task = TaskFactory(
        owner=rita, title="Call Acme back", due_at=timezone.now() - timedelta(hours=1)
    )
    notify_expiring(timezone.now())
    return task


def test_login_lands_on_the_dashboard(new_page, people):
    TaskFactory(owner=people[0], title="Prepare the proposal", due_at=timezone.now())
    page = new_page()

    sign_in(page, "rita")

    page.wait_for_url("**/")
    assert page.locator("h1").inner_text() == "Good day, Rita"
    assert "Prepare the proposal" in page.locator("#tasks").inner_text()
    assert page.locator("#pipeline-chart").is_visible()


def test_a_blocked_user_is_sent_back_until_they_resolve_the_task(new_page, blocked_task):
    other = TaskFactory(owner=blocked_task.owner, title="Something else")
    page = new_page()
    sign_in(page, "rita")

    for path in ("/", f"/tasks/{other.pk}/", "/admin/", "/no/such/page"):
        page.goto(path)
        assert page.url.endswith("/notifications/?blocked=1"), path
        assert page.locator("#blocked-notice").is_visible()

    page.click("text=Task overdue: Call Acme back")
    page.click("#complete-task")
    page.goto("/")
    assert page.url.endswith("/")
    assert "Call Acme back" not in page.locator("#notifications").inner_text()


def test_a_missed_deadline_logs_out_a_second_browser_and_refuses_login(new_page, blocked_task):
    laptop, phone = new_page(), new_page()
    sign_in(laptop, "rita")
    sign_in(phone, "rita")
    laptop.wait_for_url("**/notifications/?blocked=1")

    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        laptop.goto("/notifications/")
        assert "/login/?locked=1" in laptop.url
        phone.goto("/")
        assert "/login/" in phone.url

        sign_in(phone, "rita")
        error = phone.locator("#login-errors").inner_text()
    assert "Your account is locked" in error
    assert "Ask Bea Boss or an administrator to unlock it" in error


def test_a_manager_unlocks_a_locked_rep(new_page, blocked_task):
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        manager = new_page()
        sign_in(manager, "boss")
        manager.goto("/team/locked/")
        assert "rita" in manager.locator("#locked-users").inner_text().lower()
        manager.click("#locked-users button[type=submit]")
        assert "Nobody is locked out" in manager.locator("#locked-users").inner_text()

        rep = new_page()
        sign_in(rep, "rita")
        rep.wait_for_url("**/notifications/?blocked=1")
