"""finance_agingday, the invoice list's aging rollup, and the triggers that keep it
(finance/triggers.py). It is filled once here from the invoices there are, in the same
transaction that installs the triggers, holding off invoice writers (LOCK TABLE … SHARE) for
the seconds the sum takes at a million invoices: every invoice is counted once, by the fill or by
a trigger."""

from django.db import migrations, models


def install(apps, schema_editor) -> None:
    from finance import triggers

    triggers.install(schema_editor.connection)
    triggers.rebuild(schema_editor.connection)


def uninstall(apps, schema_editor) -> None:
    from finance import triggers

    triggers.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
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
                "constraints": [
                    models.UniqueConstraint(
                        fields=("team_key", "currency", "due_date", "penalty_sign", "failed"),
                        name="agingday_key",
                    )
                ],
            },
        ),
        migrations.RunPython(install, uninstall),
    ]
