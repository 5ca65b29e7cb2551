"""The email list's "sent from the CRM" filter reads its own partial indexes, newest first:
the backlog's for an administrator, each mailbox's copies for a rep or a manager. It used to
walk the whole newest-first order testing every email (an administrator's count read 20,000
rows for 1,000; a manager's page walked 95,000 copies of the team's mailboxes), where CRM mail
is a small part of a mailbox. Built concurrently (crm.indexes): the backlog and its copies hold
a million rows or more, and a plain CREATE INDEX would block the mailbox sync's writes for as
long as the build takes (0.9 s and 0.15 s at a million each, measured)."""

from django.db import migrations, models
from django.db.models import F, Q
from django.db.models.functions import Coalesce

from crm.indexes import AddIndexWithoutLocking


class Migration(migrations.Migration):
    atomic = False  # PostgreSQL builds an index concurrently only outside a transaction

    dependencies = [
        ("mailsync", "0011_mailbox_copy_sort_at_filled"),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="backlogemail",
            index=models.Index(
                Coalesce("date", "created_at").desc(),
                F("id").desc(),
                condition=Q(sent_from_crm=True),
                name="backlogemail_from_crm",
            ),
        ),
        AddIndexWithoutLocking(
            model_name="mailboxcopy",
            index=models.Index(
                fields=["mailbox", "-sort_at", "-email"],
                include=["folder", "direction"],
                condition=Q(sent_from_crm=True),
                name="mailboxcopy_from_crm",
            ),
        ),
    ]
