# Emails were UNIQUE on Message-ID: the first copy stored won, and a copy with the same
# Message-ID in any other mailbox gave its owner that email (issue 17). Each row is now keyed
# by what it says (mailsync.backlog.content_key). Existing rows get their key from their
# stored fields, the same function the sync uses, so a re-synced copy finds its row. A row's
# content came from its first copy (the email and that copy are inserted together); a copy in
# another mailbox may have held something else, which nobody stored, so it is removed and its
# folder rewound to read that message again. Nothing a mailbox holds is lost: the next sync
# stores each such copy as what it really is.

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
    _merge_same_content(Email, Copy)
    _unverified_copies_read_again(Email, Copy, Folder)


def _merge_same_content(Email, Copy):
    """Rows keyed by their raw bytes before (no Message-ID) that say the same thing."""
    twins = (
        Email.objects.values("content_key").annotate(n=Count("pk"), keep=Min("pk")).filter(n__gt=1)
    )
    for twin in twins:
        others = Email.objects.filter(content_key=twin["content_key"]).exclude(pk=twin["keep"])
        for copy in Copy.objects.filter(email__in=others):
            taken = Copy.objects.filter(
                email_id=twin["keep"], mailbox_id=copy.mailbox_id, folder=copy.folder
            )
            if not taken.exists():
                Copy.objects.filter(pk=copy.pk).update(email_id=twin["keep"])
        others.delete()


def _unverified_copies_read_again(Email, Copy, Folder):
    """Copies whose content nobody read: those of another mailbox than the one the row's
    content came from, and every copy of an email the CRM sent (its content is the outbox's)."""
    shared = (
        Copy.objects.values("email_id")
        .annotate(mailboxes=Count("mailbox_id", distinct=True))
        .filter(mailboxes__gt=1)
        .values_list("email_id", flat=True)
    )
    suspect = set(shared) | set(
        Copy.objects.filter(email__outbox__isnull=False).values_list("email_id", flat=True)
    )
    for email_id in sorted(suspect):
        copies = list(Copy.objects.filter(email_id=email_id).order_by("pk"))
        sent_by_crm = Email.objects.filter(pk=email_id, outbox__isnull=False).exists()
        source = None if sent_by_crm else copies[0].mailbox_id
        for copy in copies:
            if copy.mailbox_id == source:
                continue
            folder = Folder.objects.filter(
                mailbox_id=copy.mailbox_id, role=copy.folder, uidvalidity=copy.uidvalidity
            ).first()
            if folder is not None and folder.last_uid >= copy.uid:
                folder.last_uid = copy.uid - 1
                folder.save(update_fields=["last_uid"])
            copy.delete()


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
        migrations.AlterField(
            model_name="backlogemail",
            name="content_key",
            field=models.CharField(
                help_text="A hash of what the email says (transport headers left out), or "
                "outbox:<id> for the email the CRM sent.",
                max_length=255,
                unique=True,
            ),
        ),
        migrations.AlterField(
            model_name="backlogemail",
            name="sent_from_crm",
            field=models.BooleanField(
                default=False,
                help_text="The email of an outbox message, or a copy with its content.",
            ),
        ),
    ]
