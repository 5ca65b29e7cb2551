"""A contact carries its account's team (crm/triggers.py keeps it), so that a team's contact
list, and its search, read crm_contact alone instead of checking each contact's account.

Here, in one short transaction, the column is added empty (no rewrite of the table) and the
triggers installed: from then on every contact written takes its account's team. 0009 gives
the contacts already there theirs and builds the indexes."""

import django.db.models.deletion
from django.db import migrations, models


def install(apps, schema_editor) -> None:
    from crm import triggers

    triggers.install(schema_editor.connection)


def uninstall(apps, schema_editor) -> None:
    from crm import triggers

    triggers.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
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
    ]
