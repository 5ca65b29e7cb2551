"""The invoices written before 0005's triggers take their account's team, 50,000 ids a
transaction (crm.triggers.backfill_in_batches: no million rows held locked at once); then the
aging triggers are installed and the rollup filled from every owed invoice, in one transaction
that holds off invoice writes (LOCK TABLE … SHARE; reads go on) for the seconds the sum takes
(2 s at a million invoices), so that each invoice is counted once, by the fill or by a trigger;
then the indexes of a team's invoice list are built, concurrently on PostgreSQL (crm.indexes),
outside a transaction."""

from django.db import migrations, models, transaction

from crm.indexes import AddIndexWithoutLocking
from crm.triggers import backfill_in_batches, execute


def backfill(apps, schema_editor) -> None:
    from finance import triggers

    backfill_in_batches(schema_editor.connection, "finance_invoice", triggers.BACKFILL)


def install_aging(apps, schema_editor) -> None:
    from finance import triggers

    connection = schema_editor.connection
    with transaction.atomic(using=connection.alias):
        execute(connection, {"postgresql": ["LOCK TABLE finance_invoice IN SHARE MODE"]})
        execute(connection, triggers.AGING)
        triggers.rebuild(connection)


def uninstall_aging(apps, schema_editor) -> None:
    from finance import triggers

    execute(
        schema_editor.connection,
        {
            "postgresql": [
                f"DROP TRIGGER IF EXISTS {name} ON {table}"
                for name, table in triggers.AGING_TRIGGERS.items()
            ],
            "sqlite": triggers.SQLITE_AGING_DROP,
        },
    )


class Migration(migrations.Migration):
    atomic = False  # batches of their own, and indexes built concurrently

    dependencies = [
        ("finance", "0005_invoice_team_and_aging"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
        migrations.RunPython(install_aging, uninstall_aging),
        AddIndexWithoutLocking(
            model_name="invoice",
            index=models.Index(
                models.F("team"),
                models.Case(
                    models.When(debt__gt=0, then=models.Value(0)),
                    default=models.Value(1),
                    output_field=models.IntegerField(),
                ),
                models.F("due_date"),
                models.F("id"),
                name="invoice_team_list_order",
            ),
        ),
        AddIndexWithoutLocking(
            model_name="invoice",
            index=models.Index(
                condition=models.Q(("debt__gt", 0)),
                fields=["team", "due_date"],
                name="invoice_team_unpaid_due",
            ),
        ),
    ]
