"""The leads written before 0015's triggers take their owner's team, 5,000 ids a transaction
(crm.triggers.backfill_in_batches: no million rows held locked at once; run again, it changes
nothing more), then the index of a team's lead list is built, concurrently on PostgreSQL
(crm.indexes), outside a transaction: crm_rph holds a million rows or more in a large
company, and a plain CREATE INDEX would stop every lead being written while it builds."""

from django.db import migrations, models

from crm.indexes import AddIndexWithoutLocking


def backfill(apps, schema_editor) -> None:
    from crm import triggers

    triggers.backfill_leads(schema_editor.connection)


class Migration(migrations.Migration):
    atomic = False  # batches of their own, and the index built concurrently

    dependencies = [
        ("crm", "0015_lead_team"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
        AddIndexWithoutLocking(
            model_name="rph",
            index=models.Index(
                fields=["team", "-last_activity_at", "-id"], name="rph_team_activity"
            ),
        ),
    ]
