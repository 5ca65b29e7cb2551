"""In Chromium, a rep opens Leads, opens a lead and moves it to Nurture P2 with one click: the
page shows the enrollment start in place (no reload), and the same works without JavaScript."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import RPH
from nurture.models import Enrollment
from tests.browser.conftest import sign_in
from tests.factories import LeadFactory, TeamFactory, UserFactory
from tests.nurture.conftest import make_sequence


@pytest.fixture
def rita(transactional_db):
    return UserFactory(username="rita", first_name="Rita", role="rep", team=TeamFactory())


@pytest.fixture
def lead(rita):
    make_sequence(waits=(2, 3))
    before = timezone.now() - timedelta(days=1)
    return LeadFactory(name="Ana Lopez", company="Acme", owner=rita, status_changed_at=before)


def test_a_rep_moves_a_lead_to_nurture_p2_and_sees_the_enrollment_start(new_page, rita, lead):
    page = new_page()
    sign_in(page, "rita")
    page.wait_for_url("**/")
    page.click("nav >> text=Leads")
    page.click("#leads >> text=Ana Lopez")
    page.wait_for_url(f"**/rph/{lead.pk}/")
    page.evaluate("window.__marker = 1")

    page.click("[data-move='nurture_p2']")

    enrollment = page.locator("[id^='enrollment-']")
    enrollment.wait_for()
    assert page.evaluate("window.__marker") == 1  # swapped in place: no navigation
    assert "Active" in enrollment.inner_text() and "step 1 on" in enrollment.inner_text()
    assert page.locator("#rph-status").inner_text() == "Nurture P2"
    assert Enrollment.objects.get(rph=lead).status == Enrollment.Status.ACTIVE


def test_the_move_works_with_javascript_disabled(browser, live_server, rita, lead):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, "rita")
        page.wait_for_url("**/")
        page.goto(f"/rph/{lead.pk}/")

        page.click("[data-move='nurture_p2']")

        page.wait_for_url(f"**/rph/{lead.pk}/")
        assert "moved to Nurture P2" in page.locator("main").inner_text()
        assert page.locator("[id^='enrollment-'] #next-due").is_visible()
        assert RPH.objects.get().status == RPH.Status.NURTURE_P2
    finally:
        context.close()
