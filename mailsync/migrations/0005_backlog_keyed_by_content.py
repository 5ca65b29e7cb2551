# Emails were UNIQUE on Message-ID: the first copy stored won, and a copy with the same
# Message-ID in any other mailbox gave its owner that email (issue 17). Each row is now keyed
# by what it says (mailsync.backlog.content_key). Existing rows get their key from their
# stored fields, the same function the sync uses, so a re-synced copy finds its row. Which
# copy a row's content came from was never recorded, so every copy is read again: the next
# sync stores each as what its mailbox really holds. 0006 makes the key UNIQUE, in a
# transaction of its own (PostgreSQL refuses to alter a table with deletes pending checks).

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import CharField, Count, Min, Value
from django.db.models.functions import Cast, Concat

from mailsync.backlog import content_key

BATCH = 2000
FIELDS = (
    "id", "unparsed", "raw", "message_id", "in_reply_to", "references", "from_name",
    "from_address", "to", "cc", "date", "subject", "text_body", "html_body", "attachments",
)


def rekey(apps, schema_editor):
    Email = apps.get_model("mailsync", "BacklogEmail")
    Copy = apps.get_model("mailsync", "MailboxCopy")
    Folder = apps.get_model("mailsync", "MailFolder")
    sent = Email.objects.filter(outbox__isnull=False)
    sent.update(content_key=Concat(Value("outbox:"), Cast("outbox_id", CharField())))
    # Tagged by the domain of their Message-ID, which anyone can write.
    Email.objects.filter(outbox__isnull=True, sent_from_crm=True).update(sent_from_crm=False)
    synced = Email.objects.filter(outbox__isnull=True).order_by("pk").values(*FIELDS)
    batch = []
    for row in synced.iterator(chunk_size=BATCH):
        batch.append(Email(pk=row["id"], content_key=content_key(row)))
        if len(batch) == BATCH:
            Email.objects.bulk_update(batch, ["content_key"])
            batch = []
    Email.objects.bulk_update(batch, ["content_key"])
    _merge_same_content(Email)
    _unverified_copies_read_again(Copy, Folder)


def _merge_same_content(Email):
    """Rows keyed by their raw bytes before (no Message-ID) that say the same thing: one is
    kept (their copies go in any case, see below)."""
    twins = (
        Email.objects.values("content_key").annotate(n=Count("pk"), keep=Min("pk")).filter(n__gt=1)
    )
    for twin in twins:
        Email.objects.filter(content_key=twin["content_key"]).exclude(pk=twin["keep"]).delete()


def _unverified_copies_read_again(Copy, Folder):
    """Which mailbox a row's content came from was never recorded (its first copy's mailbox
    may have been removed since, leaving only a copy that held something else), so no copy
    is trusted: all are removed and every folder is read again from its first UID. A copy
    that holds what its row says joins it again by its content key; one that held
    something else becomes an email of its own."""
    Copy.objects.all().delete()
    Folder.objects.update(last_uid=0, uidnext=None, highestmodseq=None)


def nurture_mail_is_about_its_lead(apps, schema_editor):
    Outbox = apps.get_model("mailsync", "OutboxMessage")
    Enrollment = apps.get_model("nurture", "Enrollment")
    ContentType = apps.get_model("contenttypes", "ContentType")
    lead, _ = ContentType.objects.get_or_create(app_label="crm", model="rph")
    keys = Outbox.objects.filter(key__startswith="nurture:").values_list("pk", "key")
    batch = {}
    for pk, key in keys.iterator(chunk_size=BATCH):
        parts = key.split(":")
        if len(parts) == 3 and parts[1].isdigit():
            batch[pk] = int(parts[1])
        if len(batch) == BATCH:
            _about_leads(Outbox, Enrollment, lead, batch)
            batch = {}
    _about_leads(Outbox, Enrollment, lead, batch)


def _about_leads(Outbox, Enrollment, lead, batch):
    leads = dict(Enrollment.objects.filter(pk__in=batch.values()).values_list("pk", "rph_id"))
    rows = [
        Outbox(pk=pk, about_type=lead, about_id=leads[enrollment])
        for pk, enrollment in batch.items()
        if enrollment in leads
    ]
    Outbox.objects.bulk_update(rows, ["about_type", "about_id"], batch_size=BATCH)


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("mailsync", "0004_mailbox_sync"),
        ("nurture", "0002_enrol_by_trigger"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxmessage",
            name="about_type",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="contenttypes.contenttype",
            ),
        ),
        migrations.AddField(
            model_name="outboxmessage",
            name="about_id",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="backlogemail",
            name="content_key",
            field=models.CharField(max_length=255, null=True),
        ),
        migrations.AlterField(
            model_name="backlogemail",
            name="message_key",
            field=models.CharField(
                db_index=True, help_text="The Message-ID as a key: not unique.", max_length=255
            ),
        ),
        migrations.RunPython(rekey, migrations.RunPython.noop),
        migrations.RunPython(nurture_mail_is_about_its_lead, migrations.RunPython.noop),
    ]
