"""In Chromium, a rep opens Contacts, opens a contact and rejects it with a reason: the page says
that tonight's suppression run will list the address. The run comes (crm.runner.run_job), and
the page then shows the address suppressed since the run, and why."""

import pytest
from django.utils import timezone

from crm import runner
from crm.models import Contact
from mailsync.models import Suppression
from tests.browser.conftest import sign_in
from tests.factories import AccountFactory, ContactFactory, TeamFactory, UserFactory

WHY = "Asked us never to write again"


@pytest.fixture
def rita(transactional_db):
    return UserFactory(username="rita", first_name="Rita", role="rep", team=TeamFactory())


@pytest.fixture
def ana(rita):
    account = AccountFactory(name="Acme", team=rita.team)
    return ContactFactory(name="Ana Lopez", email="ana@acme.example", account=account)


def test_a_rep_rejects_a_contact_and_sees_it_suppressed_after_the_run(new_page, rita, ana):
    page = new_page()
    sign_in(page, "rita")
    page.wait_for_url("**/")
    page.goto("/contacts/")
    page.fill("main input[name=q]", "lopez")
    page.click("#contacts >> text=Ana Lopez")
    page.wait_for_url(f"**/contacts/{ana.pk}/")

    page.select_option("select[name=to]", "rejected")
    page.fill("input[name=reason]", WHY)
    page.click("#change-status")

    page.locator("#suppression-pending").wait_for()
    assert page.locator("#contact-status-name").inner_text() == "Rejected"
    assert "tonight's suppression run" in page.locator("#suppression-pending").inner_text()
    assert Contact.objects.get().status_reason == WHY

    run = runner.run_job("suppression_build", timezone.now())
    assert run.status == "succeeded" and Suppression.objects.filter(address=ana.email).exists()

    page.reload()
    suppressed = page.locator("#suppressed")
    suppressed.wait_for()
    assert suppressed.inner_text().startswith("Suppressed since")
    assert WHY in page.locator("#suppression-why").inner_text()
    assert page.locator("#suppression-pending").count() == 0
