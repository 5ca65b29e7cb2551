"""Searches that PostgreSQL plans well and contact searches that read one index.

- The search indexes keep 1,000 histogram buckets of their expression instead of 100
  (crm.indexes.SEARCH_STATISTICS), and their tables are analysed again: PostgreSQL reads there
  how many rows a LIKE '%…%' matches, and took a surname in 1 row of 60 for 1 in 10,000.
- A contact list's two orders (a team's, everyone's) carry the email in their index, so that
  a search walks the order testing name and email without reading the table
  (crm.matching.first_keys). Built concurrently and the old ones dropped concurrently:
  crm_contact holds a million rows or more in a large company."""

from django.db import migrations, models

from crm.indexes import AddIndexWithoutLocking, RemoveIndexWithoutLocking, search_statistics

ANALYSED = ("crm_rph", "crm_contact", "crm_account", "crm_opportunity", "finance_invoice")


def more_statistics(apps, schema_editor) -> None:
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    search_statistics(connection)
    with connection.cursor() as cursor:
        for table in ANALYSED:
            cursor.execute(f"ANALYZE {table}")  # noqa: S608 - our own table names


def default_statistics(apps, schema_editor) -> None:
    search_statistics(schema_editor.connection, -1)


class Migration(migrations.Migration):
    atomic = False  # indexes built concurrently

    dependencies = [
        ("crm", "0016_lead_team_backfill"),
        ("finance", "0004_invoice_list_order"),  # the invoice number's search index
    ]

    operations = [
        migrations.RunPython(more_statistics, default_statistics, elidable=True),
        AddIndexWithoutLocking(
            model_name="contact",
            index=models.Index(
                fields=["team", "name", "id"], include=["email"], name="contact_team_name_email"
            ),
        ),
        RemoveIndexWithoutLocking(model_name="contact", name="contact_team_name"),
        AddIndexWithoutLocking(
            model_name="contact",
            index=models.Index(fields=["name", "id"], include=["email"], name="contact_name_email"),
        ),
        RemoveIndexWithoutLocking(model_name="contact", name="contact_name"),
    ]
