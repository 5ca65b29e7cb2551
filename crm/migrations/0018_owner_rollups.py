"""The dashboard's rollups, kept by the database (crm/rollups.py): a person's opportunities per
stage (crm_ownerpipeline) and open tasks per due day (crm_ownertaskday).

In one transaction: the tables, the triggers, and the first sums, read from scratch while the
opportunities and tasks are locked against writes (SHARE; about a second each at a million
rows; readers go on). The tables' indexes are built while they are empty, so no concurrent
build is needed: the sums are a row per person and stage or due day."""

import django.db.models.deletion
import django.db.models.manager
from django.conf import settings
from django.db import migrations, models


def install(apps, schema_editor) -> None:
    from crm import rollups

    rollups.install(schema_editor.connection)
    rollups.rebuild(schema_editor.connection)


def uninstall(apps, schema_editor) -> None:
    from crm import rollups

    rollups.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0017_search_statistics_and_contact_walks"),
    ]

    operations = [
        migrations.CreateModel(
            name="OwnerPipeline",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("stage", models.CharField(max_length=16)),
                ("opportunities", models.BigIntegerField()),
                ("amount", models.DecimalField(decimal_places=2, max_digits=24)),
                (
                    "owner",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "default_manager_name": "dumped",
                "indexes": [
                    models.Index(fields=["owner", "stage"], name="ownerpipeline_owner_stage")
                ],
            },
            managers=[
                ("dumped", django.db.models.manager.Manager()),
            ],
        ),
        migrations.CreateModel(
            name="OwnerTaskDay",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("due_day", models.DateField()),
                ("tasks", models.BigIntegerField()),
                (
                    "owner",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "default_manager_name": "dumped",
                "indexes": [
                    models.Index(fields=["owner", "due_day"], name="ownertaskday_owner_day")
                ],
            },
            managers=[
                ("dumped", django.db.models.manager.Manager()),
            ],
        ),
        migrations.RunPython(install, uninstall),
    ]
