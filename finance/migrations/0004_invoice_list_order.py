"""The invoice list (/invoices/): an index in its order (owed first, by due date), and on
PostgreSQL a trigram index for its search by number (icontains runs as UPPER(number) LIKE
UPPER('%…%'), as the lead list's search in crm 0005)."""

from django.db import migrations, models


def add_number_search_index(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite scans; it holds demo and test data only
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cursor.fetchone() is None:
            return
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        cursor.execute(
            "CREATE INDEX IF NOT EXISTS invoice_number_trgm ON finance_invoice "
            'USING gin ((UPPER("number"::text)) gin_trgm_ops)'
        )


def drop_number_search_index(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS invoice_number_trgm")


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0006_crm_pages"),
        ("finance", "0003_currencies_and_credits"),
    ]

    operations = [
        migrations.AddIndex(
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
