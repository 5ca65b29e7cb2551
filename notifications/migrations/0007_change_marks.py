"""The marks of what changed since the last notifications_daily run, and the record of that
run (notifications.changes): a same-day re-run reads the changed ranges only (#21 §4).

The triggers go on PostgreSQL only (SQLite's runs read everything). Creating a trigger takes
a brief lock on its table and reads no row; the marks table starts empty. A database migrated
here has no record of a last run, so its next run reads everything, as before."""

from django.db import migrations, models


def install(apps, schema_editor) -> None:
    from notifications import changes

    changes.install(schema_editor.connection)


def uninstall(apps, schema_editor) -> None:
    from notifications import changes

    changes.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0006_escalation_indexes"),
        ("crm", "0023_ownertaskday_index_holds_tasks"),
        ("finance", "0007_aging_truncate_waits_for_compact"),
    ]

    operations = [
        migrations.CreateModel(
            name="DailySweep",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("as_of", models.DateTimeField()),
                ("rules", models.CharField(max_length=64)),
            ],
        ),
        migrations.CreateModel(
            name="ObjectChange",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("kind", models.CharField(max_length=16)),
                ("first_id", models.BigIntegerField()),
                ("last_id", models.BigIntegerField()),
                ("xid", models.BigIntegerField()),
            ],
        ),
        migrations.RunPython(install, uninstall, elidable=False),
    ]
