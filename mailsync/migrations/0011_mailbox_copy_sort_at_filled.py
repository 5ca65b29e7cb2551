"""0010's columns filled from each copy's email, made NOT NULL, and indexed; every step can
run again after an interruption.

- The copies are filled by primary-key ranges (one UPDATE of 50,000 each, committed on its
  own), then once more for any copy an older sync worker wrote meanwhile (stop the workers
  while migrating: a copy they write after this migration would have no sort_at).
- On PostgreSQL each column is made NOT NULL behind a CHECK constraint validated first, which
  scans the table without blocking reads or writes; SET NOT NULL then needs no scan, so its
  exclusive lock lasts an instant. SQLite rebuilds the table.
- The index (mailbox, sort_at desc, email desc), which also holds the copy's folder, direction
  and sent_from_crm, is built without locking the table (crm.indexes):
  mailsync_mailboxcopy holds a row per email and folder, a million or more."""

from django.db import migrations, models
from django.db.models import Max, Min, OuterRef, Subquery
from django.db.models.functions import Coalesce

from crm.indexes import AddIndexWithoutLocking

BATCH = 50_000  # copies per UPDATE
DIRECTIONS = [("inbound", "Received"), ("outbound", "Sent")]
COLUMNS = {
    "sort_at": models.DateTimeField(editable=False),
    "direction": models.CharField(editable=False, max_length=8, choices=DIRECTIONS),
    "sent_from_crm": models.BooleanField(editable=False),
}


def fill_from_emails(apps, schema_editor) -> None:
    Copy = apps.get_model("mailsync", "MailboxCopy")
    Email = apps.get_model("mailsync", "BacklogEmail")
    copies = Copy.objects.using(schema_editor.connection.alias)
    of_email = Email.objects.filter(pk=OuterRef("email_id"))
    values = {
        "sort_at": Subquery(of_email.values(at=Coalesce("date", "created_at"))[:1]),
        "direction": Subquery(of_email.values("direction")[:1]),
        "sent_from_crm": Subquery(of_email.values("sent_from_crm")[:1]),
    }
    bounds = copies.aggregate(first=Min("pk"), last=Max("pk"))
    if bounds["first"] is not None:
        for start in range(bounds["first"], bounds["last"] + 1, BATCH):
            empty = copies.filter(pk__gte=start, pk__lt=start + BATCH, sort_at__isnull=True)
            empty.update(**values)
    copies.filter(sort_at__isnull=True).update(**values)  # written meanwhile


def not_null(apps, schema_editor) -> None:
    Copy = apps.get_model("mailsync", "MailboxCopy")
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        for name, definition in COLUMNS.items():
            field = definition.clone()
            field.set_attributes_from_name(name)
            field.model = Copy
            schema_editor.alter_field(Copy, Copy._meta.get_field(name), field)
        return
    with connection.cursor() as cursor:
        for name in COLUMNS:
            check = f"mailboxcopy_{name}_not_null"
            cursor.execute(f'ALTER TABLE mailsync_mailboxcopy DROP CONSTRAINT IF EXISTS "{check}"')
            cursor.execute(
                f'ALTER TABLE mailsync_mailboxcopy ADD CONSTRAINT "{check}"'
                f' CHECK ("{name}" IS NOT NULL) NOT VALID'
            )
            cursor.execute(f'ALTER TABLE mailsync_mailboxcopy VALIDATE CONSTRAINT "{check}"')
            cursor.execute(f'ALTER TABLE mailsync_mailboxcopy ALTER COLUMN "{name}" SET NOT NULL')
            cursor.execute(f'ALTER TABLE mailsync_mailboxcopy DROP CONSTRAINT "{check}"')


def nullable(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            for name in COLUMNS:
                cursor.execute(
                    f'ALTER TABLE mailsync_mailboxcopy ALTER COLUMN "{name}" DROP NOT NULL'
                )


class Migration(migrations.Migration):
    atomic = False  # batches of their own, and an index built concurrently

    dependencies = [
        ("mailsync", "0010_mailbox_copy_sort_at"),
    ]

    operations = [
        migrations.RunPython(fill_from_emails, migrations.RunPython.noop, elidable=False),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="mailboxcopy", name=name, field=field)
                for name, field in COLUMNS.items()
            ],
            database_operations=[migrations.RunPython(not_null, nullable)],
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
