"""My email in Chromium: a word of an email's text finds it as one types (htmx swaps the
list in place and the address bar follows), and by the plain form without JavaScript."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.factories import TeamFactory, UserFactory
from tests.mailsync.test_email_list import mail, mailbox_of


@pytest.fixture
def rita(transactional_db):
    rita = UserFactory(username="rita", first_name="Rita", role="rep", team=TeamFactory())
    box = mailbox_of(rita, "rita@vigil.example")
    mail(box, "Spring campaign", body="The artwork for the brochure is attached.")
    mail(box, "Lunch", body="See you at noon.")
    return rita


def test_typing_a_word_of_an_emails_text_finds_it_in_place(new_page, rita):
    page = new_page()
    sign_in(page, "rita")
    page.wait_for_url("**/")
    page.get_by_role("link", name="Email", exact=True).click()
    page.wait_for_url("**/mail/")
    rows = page.locator("#emails tr[data-email]")
    expect(rows).to_have_count(2)
    page.evaluate("window.__marker = 1")

    page.fill("main input[name=q]", "brochure")

    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Spring campaign")
    assert page.evaluate("window.__marker") == 1  # the same document: no navigation
    expect(page).to_have_url(re.compile(r"/mail/\?q=brochure"))


def test_the_search_works_without_javascript(browser, live_server, rita):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, "rita")
        page.wait_for_url("**/")
        page.goto("/mail/")

        page.fill("main input[name=q]", "brochure")
        page.get_by_role("button", name="Filter").click()

        page.wait_for_url("**/mail/?q=brochure*")
        rows = page.locator("#emails tr[data-email]")
        expect(rows).to_have_count(1)
        expect(rows).to_contain_text("Spring campaign")
    finally:
        context.close()
