"""The invoice list (/invoices/): an index in its order (owed first, by due date), and on
PostgreSQL a trigram index for its search by number (icontains runs as UPPER(number) LIKE
UPPER('%…%'), as the lead list's search in crm 0005). finance_invoice holds a million rows or
more in a large company, and a plain CREATE INDEX would block every write to it (payments, the
penalty run) for the whole build: both are built concurrently on PostgreSQL (crm.indexes),
outside a transaction."""

from django.db import migrations, models

from crm.indexes import AddIndexWithoutLocking, add_trigram_indexes, drop_trigram_indexes


SEARCHED = {"finance_invoice": ("number",)}


def add_number_search_index(apps, schema_editor) -> None:
    add_trigram_indexes(schema_editor, SEARCHED)


def drop_number_search_index(apps, schema_editor) -> None:
    drop_trigram_indexes(schema_editor, SEARCHED)


class Migration(migrations.Migration):
    atomic = False  # PostgreSQL builds an index concurrently only outside a transaction

    dependencies = [
        ("crm", "0007_list_indexes_without_locking"),
        ("finance", "0003_currencies_and_credits"),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="invoice",
            index=models.Index(
                models.Case(
                    models.When(debt__gt=0, then=models.Value(0)),
                    default=models.Value(1),
                    output_field=models.IntegerField(),
                ),
                models.F("due_date"),
                models.F("id"),
                name="invoice_list_order",
            ),
        ),
        migrations.RunPython(add_number_search_index, drop_number_search_index),
    ]
