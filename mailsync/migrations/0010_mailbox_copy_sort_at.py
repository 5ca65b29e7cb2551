"""The email list of a rep or a manager read from their mailboxes' copies, newest first.

MailboxCopy.sort_at is the email's place in the list (Coalesce(date, created_at)), with an index
(mailbox, sort_at desc, email desc) that also holds the copy's folder and the email's direction
and sent_from_crm (the list's filters and its count, read from the index alone): a page walks a
mailbox's own copies in order instead of the whole backlog's. The columns are added empty,
filled by primary-key ranges (one UPDATE each, committed on its own, so no long transaction
holds the table's rows), then made NOT NULL; the index is built without locking the table
(crm.indexes): mailsync_mailboxcopy holds a row per email and folder, a million or more."""

from django.db import migrations, models
from django.db.models import Max, Min, OuterRef, Subquery
from django.db.models.functions import Coalesce

from crm.indexes import AddIndexWithoutLocking

BATCH = 50_000  # copies per UPDATE
DIRECTIONS = [("inbound", "Received"), ("outbound", "Sent")]


def fill_from_emails(apps, schema_editor) -> None:
    Copy = apps.get_model("mailsync", "MailboxCopy")
    Email = apps.get_model("mailsync", "BacklogEmail")
    copies = Copy.objects.using(schema_editor.connection.alias)
    of_email = Email.objects.filter(pk=OuterRef("email_id"))
    bounds = copies.aggregate(first=Min("pk"), last=Max("pk"))
    if bounds["first"] is None:
        return
    for start in range(bounds["first"], bounds["last"] + 1, BATCH):
        copies.filter(pk__gte=start, pk__lt=start + BATCH, sort_at__isnull=True).update(
            sort_at=Subquery(of_email.values(at=Coalesce("date", "created_at"))[:1]),
            direction=Subquery(of_email.values("direction")[:1]),
            sent_from_crm=Subquery(of_email.values("sent_from_crm")[:1]),
        )


class Migration(migrations.Migration):
    atomic = False  # PostgreSQL builds an index concurrently only outside a transaction

    dependencies = [
        ("mailsync", "0009_email_links_and_search"),
    ]

    operations = [
        migrations.AddField(
            model_name="mailboxcopy",
            name="sort_at",
            field=models.DateTimeField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="mailboxcopy",
            name="direction",
            field=models.CharField(editable=False, max_length=8, choices=DIRECTIONS, null=True),
        ),
        migrations.AddField(
            model_name="mailboxcopy",
            name="sent_from_crm",
            field=models.BooleanField(editable=False, null=True),
        ),
        migrations.RunPython(fill_from_emails, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="mailboxcopy",
            name="sort_at",
            field=models.DateTimeField(editable=False),
        ),
        migrations.AlterField(
            model_name="mailboxcopy",
            name="direction",
            field=models.CharField(editable=False, max_length=8, choices=DIRECTIONS),
        ),
        migrations.AlterField(
            model_name="mailboxcopy",
            name="sent_from_crm",
            field=models.BooleanField(editable=False),
        ),
        AddIndexWithoutLocking(
            model_name="mailboxcopy",
            index=models.Index(
                fields=["mailbox", "-sort_at", "-email"],
                include=["folder", "direction", "sent_from_crm"],
                name="mailboxcopy_newest",
            ),
        ),
    ]
