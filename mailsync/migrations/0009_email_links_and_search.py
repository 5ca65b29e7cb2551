# The email list: an index for newest first (both databases), a search document and its GIN
# index (PostgreSQL only: SQLite searches by substring), and addresses linked to a record by
# hand.

import django.db.models.deletion
import django.db.models.functions.comparison
from django.conf import settings
from django.db import migrations, models

# A stored generated column, not an expression index: a search that also filters (the
# mailboxes one may see, a direction) checks each candidate row against its stored words,
# where an expression index would make PostgreSQL compute them again for each row. The
# 'simple' configuration keeps names and addresses as written (no stemming, no stop words);
# each part is cut to a length so that no email can make a tsvector over its 1 MB limit and
# fail the insert of its batch. Django does not know the column (mailsync.backlog.searched
# reads it): its inserts leave it to PostgreSQL. Adding it rewrites the table once.
SEARCH_COLUMN = """
ALTER TABLE mailsync_backlogemail ADD COLUMN IF NOT EXISTS search_document tsvector
GENERATED ALWAYS AS (
    to_tsvector(
        'simple'::regconfig,
        left(subject || ' ' || from_address || ' ' || ("to")::text || ' ' || (cc)::text, 20000)
        || ' ' || left(text_body, 100000)
    )
) STORED
"""
SEARCH_INDEX = """
CREATE INDEX IF NOT EXISTS backlogemail_search ON mailsync_backlogemail USING gin (search_document)
"""


def add_search_document(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SEARCH_COLUMN)
        schema_editor.execute(SEARCH_INDEX)


def drop_search_document(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS backlogemail_search")
        schema_editor.execute("ALTER TABLE mailsync_backlogemail DROP COLUMN IF EXISTS search_document")


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0004_abandoned_runs_leave_their_slot"),
        ("mailsync", "0008_raw_kept_compressed"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="backlogemail",
            index=models.Index(
                models.OrderBy(
                    django.db.models.functions.comparison.Coalesce("date", "created_at"),
                    descending=True,
                ),
                models.OrderBy(models.F("id"), descending=True),
                name="backlogemail_newest",
            ),
        ),
        migrations.RunPython(add_search_document, drop_search_document, elidable=False),
        migrations.CreateModel(
            name="LinkedAddress",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "address",
                    models.CharField(
                        help_text="Normalised as the backlog's addresses are (lower-cased, IDN).",
                        max_length=320,
                    ),
                ),
                ("linked_at", models.DateTimeField()),
                (
                    "account",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="crm.account",
                    ),
                ),
                (
                    "contact",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="crm.contact",
                    ),
                ),
                (
                    "email",
                    models.ForeignKey(
                        blank=True,
                        help_text="The email it was linked from.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="mailsync.backlogemail",
                    ),
                ),
                (
                    "linked_by",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "rph",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="crm.rph",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(
                                ("account__isnull", True),
                                ("contact__isnull", False),
                                ("rph__isnull", True),
                            ),
                            models.Q(
                                ("account__isnull", True),
                                ("contact__isnull", True),
                                ("rph__isnull", False),
                            ),
                            models.Q(
                                ("account__isnull", False),
                                ("contact__isnull", True),
                                ("rph__isnull", True),
                            ),
                            _connector="OR",
                        ),
                        name="linkedaddress_one_record",
                    ),
                    models.UniqueConstraint(
                        fields=("address", "contact"), name="linkedaddress_contact"
                    ),
                    models.UniqueConstraint(fields=("address", "rph"), name="linkedaddress_rph"),
                    models.UniqueConstraint(
                        fields=("address", "account"), name="linkedaddress_account"
                    ),
                ],
            },
        ),
    ]
