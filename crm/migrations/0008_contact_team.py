"""A contact carries its account's team (crm/triggers.py keeps it), so that a team's contact
list, and its search, read crm_contact alone instead of checking each contact's account.

The column is added empty (no rewrite of the table), the triggers are installed, and only then
are the contacts already there given their account's team, in one statement: a contact written
meanwhile is caught by the triggers. The two indexes, on crm_contact (a million rows or more in
a large company), are built concurrently on PostgreSQL (crm.indexes), outside a transaction."""

import django.db.models.deletion
from django.db import migrations, models

from crm.indexes import AddIndexWithoutLocking


def install(apps, schema_editor) -> None:
    from crm import triggers

    triggers.install(schema_editor.connection)
    triggers.backfill(schema_editor.connection)


def uninstall(apps, schema_editor) -> None:
    from crm import triggers

    triggers.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    atomic = False  # PostgreSQL builds an index concurrently only outside a transaction

    dependencies = [
        ("crm", "0007_list_indexes_without_locking"),
    ]

    operations = [
        migrations.AddField(
            model_name="contact",
            name="team",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="crm.team",
            ),
        ),
        migrations.RunPython(install, uninstall),
        AddIndexWithoutLocking(
            model_name="contact",
            index=models.Index(fields=["team", "name", "id"], name="contact_team_name"),
        ),
        AddIndexWithoutLocking(
            model_name="contact",
            index=models.Index(
                fields=["team", "status", "name", "id"], name="contact_team_status_name"
            ),
        ),
    ]
