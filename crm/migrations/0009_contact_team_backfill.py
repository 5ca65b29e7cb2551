"""The contacts written before 0008's triggers take their account's team, 50,000 ids a
transaction (crm.triggers.backfill_in_batches: no million rows held locked at once; run again,
it changes nothing more), then the indexes of a team's contact list are built, concurrently on
PostgreSQL (crm.indexes), outside a transaction: crm_contact holds a million rows or more in a
large company."""

from django.db import migrations, models

from crm.indexes import AddIndexWithoutLocking


def backfill(apps, schema_editor) -> None:
    from crm import triggers

    triggers.backfill(schema_editor.connection)


class Migration(migrations.Migration):
    atomic = False  # batches of their own, and indexes built concurrently

    dependencies = [
        ("crm", "0008_contact_team"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
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
