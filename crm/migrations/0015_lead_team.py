"""A lead carries its owner's team (crm/triggers.py keeps it), so that a manager's lead list,
and its search, read crm_rph alone instead of checking each lead's owner.

Here, in one short transaction, the column is added empty (no rewrite of the table) and the
triggers installed: from then on every lead written takes its owner's team. 0016 gives the
leads already there theirs and builds the index."""

import django.db.models.deletion
from django.db import migrations, models


def install(apps, schema_editor) -> None:
    from crm import triggers

    triggers.install_leads(schema_editor.connection)


def uninstall(apps, schema_editor) -> None:
    from crm import triggers

    triggers.uninstall_leads(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0014_working_hours_and_places"),
    ]

    operations = [
        migrations.AddField(
            model_name="rph",
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
