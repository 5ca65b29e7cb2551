"""seed_demo: rep11's demo mailbox with months of threads, readable on their accounts' pages
with no IMAP server."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from crm.models import Account, User
from mailsync.models import BacklogEmail, Mailbox


@pytest.mark.django_db
def test_the_demo_mailbox_has_threads_on_its_accounts_pages():
    call_command("seed_demo", "--force", stdout=StringIO())
    call_command("seed_demo", "--force", stdout=StringIO())

    mailbox = Mailbox.objects.get(owner__username="rep11")
    emails = BacklogEmail.objects.filter(copies__mailbox=mailbox)
    assert emails.count() >= 16
    assert {"inbound", "outbound"} <= set(emails.values_list("direction", flat=True))
    assert emails.exclude(attachments=[]).exists() and emails.exclude(html_body="").exists()
    contact_address = emails.filter(direction="outbound").first().to[0]
    account = Account.objects.get(contacts__email=contact_address, team=mailbox.owner.team)
    client = Client()
    client.force_login(User.objects.get(username="rep11"))

    page = client.get(f"/accounts/{account.pk}/emails/").content.decode()

    assert 'id="email-threads"' in page and "No email with them yet" not in page
