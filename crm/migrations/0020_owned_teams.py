"""A task and an event carry their owner's team, a dispatch its account's (`account_team`; its
own team is the visiting team it is sent to): crm/triggers.py keeps them, so that a manager's
dashboard reads the team's open tasks, week of events and dispatches from an index each
instead of checking every row's owner or account (#21).

Here, in one short transaction, the columns are added empty (no rewrite of the tables) and the
triggers installed: from then on every row written takes its team. 0021 gives the rows already
there theirs and builds the indexes. Until 0021 has finished, the code that reads these
columns would hide the older rows from managers and reps: start it once `migrate` is done (as
docker-compose.yml does)."""

import django.db.models.deletion
from django.db import migrations, models


def install(apps, schema_editor) -> None:
    from crm import triggers

    triggers.install_owned(schema_editor.connection)


def uninstall(apps, schema_editor) -> None:
    from crm import triggers

    triggers.uninstall_owned(schema_editor.connection)


def copied_team() -> models.ForeignKey:
    return models.ForeignKey(
        blank=True,
        db_constraint=False,
        db_index=False,
        editable=False,
        null=True,
        on_delete=django.db.models.deletion.DO_NOTHING,
        related_name="+",
        to="crm.team",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0019_email_listed_indexes"),
    ]

    operations = [
        migrations.AddField(model_name="task", name="team", field=copied_team()),
        migrations.AddField(model_name="event", name="team", field=copied_team()),
        migrations.AddField(model_name="dispatch", name="account_team", field=copied_team()),
        migrations.RunPython(install, uninstall),
    ]
