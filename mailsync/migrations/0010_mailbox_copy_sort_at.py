"""The email list of a rep or a manager read from their mailboxes' copies, newest first.

MailboxCopy.sort_at is the email's place in the list (Coalesce(date, created_at)), and the copy
also keeps the email's direction and sent_from_crm (the list's filters and its count, read
from the index of 0011). Here, in one short transaction, the columns are added empty (no
rewrite of the table); 0011 fills them, makes them NOT NULL and builds the index."""

from django.db import migrations, models

DIRECTIONS = [("inbound", "Received"), ("outbound", "Sent")]


class Migration(migrations.Migration):
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
    ]
