"""An invoice carries its account's team, and finance_agingday sums the owed invoices per team,
currency, due day and penalty state for the invoice list's aging table; the database keeps both
(finance/triggers.py).

Here, in one short transaction, the rollup table is created, the column added empty (no
rewrite of the table) and the team triggers installed: from then on every invoice written takes
its account's team. 0006 gives the invoices already there theirs, fills the rollup and builds
the indexes."""

import django.db.models.deletion
from django.db import migrations, models

from crm.triggers import execute


def install_team(apps, schema_editor) -> None:
    from finance import triggers

    execute(schema_editor.connection, triggers.TEAM)


def uninstall(apps, schema_editor) -> None:
    from finance import triggers

    triggers.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0009_contact_team_backfill"),
        ("finance", "0004_invoice_list_order"),
    ]

    operations = [
        migrations.CreateModel(
            name="AgingDay",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("team_key", models.BigIntegerField(help_text="The account's team; 0 for none.")),
                ("currency", models.CharField(max_length=3)),
                ("due_date", models.DateField()),
                (
                    "penalty_sign",
                    models.SmallIntegerField(help_text="1: a penalty; 0: none; -1: below zero."),
                ),
                (
                    "failed",
                    models.BooleanField(help_text="The penalty run could not compute these."),
                ),
                ("invoices", models.BigIntegerField()),
                ("debt", models.DecimalField(decimal_places=4, max_digits=26)),
                ("penalty", models.DecimalField(decimal_places=4, max_digits=26)),
            ],
            options={
                "default_manager_name": "dumped",
                "indexes": [
                    models.Index(fields=["team_key", "due_date"], name="agingday_team_due")
                ],
            },
            managers=[
                ("dumped", django.db.models.manager.Manager()),
            ],
        ),
        migrations.AddField(
            model_name="invoice",
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
        migrations.RunPython(install_team, uninstall),
    ]
