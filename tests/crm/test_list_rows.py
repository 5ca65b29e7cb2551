"""The lists' rows (Jinja2 templates, crm/templating.py) escape everything a user typed (or a
sender wrote), on the full page and in the rows htmx swaps in, and show the owner's column to
managers only. Leads, contacts and accounts are read as the values the rows show, not as
model instances (crm.paging.rows_as), and show the same."""

from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import formataddr

import pytest
from django.db.models import Model
from django.utils import translation
from django.utils.text import Truncator

from crm.models import RPH, Contact
from crm.templating import truncatechars
from mailsync import backlog
from mailsync.models import Mailbox
from tests.clients import HTMX, logged_in
from tests.factories import (
    AccountFactory,
    ContactFactory,
    InvoiceFactory,
    LeadFactory,
    UserFactory,
)

HOSTILE = "<script>alert(1)</script>&'\""
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&amp;"


@pytest.fixture
def manny(north):
    return UserFactory(username="manny", first_name="Manny", role="manager", team=north)


@pytest.fixture
def records(north, rita):
    account = AccountFactory(name=f"Acme {HOSTILE}", team=north, account_manager=rita)
    ContactFactory(account=account, name=f"Ana {HOSTILE}", email="ana@example.com")
    LeadFactory(name=f"Lead {HOSTILE}", company=f"Co {HOSTILE}", owner=rita)
    invoice = InvoiceFactory(account=account, number=f"N-{HOSTILE}"[:40])
    invoice.__class__.objects.filter(pk=invoice.pk).update(penalty_error=f"bad {HOSTILE}")
    return account


LISTS = ["/leads/", "/contacts/", "/accounts/", "/invoices/"]


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_what_users_typed_is_escaped_in_the_rows(url, headers, rita, records, time_machine):
    time_machine.move_to(date(2026, 3, 15), tick=False)
    response = logged_in(rita).get(url, headers=headers)

    page = response.content.decode()
    assert response.status_code == 200
    assert ESCAPED in page
    assert "<script>alert" not in page
    assert ("<html" in page) == (not headers)  # the rows alone for htmx


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_what_a_sender_wrote_is_escaped_in_the_email_rows(headers, rita):
    mailbox = mail_of(rita)
    message = EmailMessage()
    message["From"] = formataddr((f"Ana {HOSTILE}", "ana@client.example"))
    message["To"] = "rita@vigil.example"
    message["Subject"] = f"Offer {HOSTILE}"
    message["Date"] = "Mon, 16 Mar 2026 09:00:00 +0000"
    message.set_content(f"Body {HOSTILE}")
    inbound = backlog.Fetched(1, message.as_bytes())
    del message["From"], message["To"]
    message["From"], message["To"] = "rita@vigil.example", "o'neil&co@client.example"
    sent = backlog.Fetched(2, message.as_bytes())
    backlog.store(mailbox, "inbox", 1, [inbound], datetime(2026, 3, 16, tzinfo=UTC))
    backlog.store(mailbox, "sent", 1, [sent], datetime(2026, 3, 16, tzinfo=UTC))

    response = logged_in(rita).get("/mail/", headers=headers)

    page = response.content.decode()
    assert response.status_code == 200
    rows = page[page.index('id="emails"') :]
    # The sender's name, and each email's subject and the start of its text.
    assert rows.count(ESCAPED) == 5
    assert "to o&#39;neil&amp;co@client.example" in rows
    assert "<script>alert" not in page
    assert ("<html" in page) == (not headers)


def mail_of(owner) -> Mailbox:
    return Mailbox.objects.create(
        owner=owner,
        provider=Mailbox.Provider.IMAP,
        auth=Mailbox.Auth.PASSWORD,
        address="rita@vigil.example",
        username="rita@vigil.example",
        imap_host="imap.client.example",
        status=Mailbox.Status.ACTIVE,
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("url", "column", "cell"),
    [
        ("/leads/", "<th>Owner</th>", "<td>Rita</td>"),
        ("/contacts/", "<th>Account manager</th>", "<td>Rita</td>"),
    ],
)
def test_a_manager_sees_whose_records_they_are_and_a_rep_does_not(
    url, column, cell, rita, manny, records
):
    mine = logged_in(rita).get(url).content.decode()
    team = logged_in(manny).get(url).content.decode()

    assert column not in mine and cell not in mine
    assert column in team and cell in team


@pytest.mark.parametrize("q", ["", "script"], ids=["list", "search"])
@pytest.mark.parametrize("url", ["/leads/", "/contacts/", "/accounts/", "/invoices/"])
def test_the_rows_are_read_as_values_and_show_the_same(url, q, manny, records):
    lead, contact = RPH.objects.get(), Contact.objects.get()
    cells = {
        "/leads/": ["Rita", lead.get_status_display(), lead.get_source_display()],
        "/contacts/": ["Rita", contact.get_status_display(), f"Acme {ESCAPED}"],
        "/accounts/": ["Rita", "North"],
        "/invoices/": ["Open (owed)", f'<a href="?account={records.pk}">Acme {ESCAPED}'],
    }[url]

    response = logged_in(manny).get(url, {"q": q})

    page = response.content.decode()
    assert len(response.context["page"].rows) == 1  # every record's words hold "<script>"
    assert not isinstance(response.context["page"].rows[0], Model)
    for cell in cells:
        assert f"<td>{cell}" in page


# Ellipses of Django's translations: "…" (en), " ..." (ms), "..." (ckb).
@pytest.mark.parametrize("language", ["en-us", "ms", "ckb"])
def test_long_text_is_cut_in_the_rows_as_djangos_filter_cuts_it(language):
    """The rows' truncatechars cuts ASCII itself (Django's walks each character in Python);
    whatever the text, the length and the language, it gives what Django's filter gives."""
    texts = [
        "",
        "a",
        "x" * 119,
        "x" * 120,
        "x" * 121,
        "word " * 60,
        "ends in an ellipsis…" * 9,
        "ends in dots..." * 12,
        "ends in dots ..." * 12,
        "café " * 40,
        "e\u0301" * 130,  # combining accents: not counted as characters
        "日本語のテキスト" * 20,
    ]
    with translation.override(language):
        for text in texts:
            for length in (-1, 0, 1, 2, 3, 4, 5, 119, 120, 121, 500, "120"):
                assert truncatechars(text, length) == Truncator(text).chars(length), (
                    text[:20],
                    length,
                )
        assert truncatechars("x" * 200, 120) == Truncator("x" * 200).chars(120) != "x" * 120
