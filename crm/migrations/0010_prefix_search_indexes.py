"""The search box's one- and two-letter searches (crm.search: what starts with them) read a
B-tree index on UPPER(column) text_pattern_ops of each column it searches, instead of the
trigram indexes: those find every word that starts with the letters anywhere in a name (a
surname), and the rows read to drop them took 20–30 ms a kind at a million leads or contacts.
Built concurrently (crm.indexes), outside a transaction: these tables hold a million rows or
more in a large company, and a plain CREATE INDEX would block every write to them."""

from django.db import migrations

from crm.indexes import add_prefix_indexes, drop_prefix_indexes

SEARCHED = {
    "crm_account": ("name",),
    "crm_contact": ("name", "email"),
    "crm_opportunity": ("name",),
    "crm_rph": ("name", "company", "email"),
}


def add_search_indexes(apps, schema_editor) -> None:
    add_prefix_indexes(schema_editor, SEARCHED)


def drop_search_indexes(apps, schema_editor) -> None:
    drop_prefix_indexes(schema_editor, SEARCHED)


class Migration(migrations.Migration):
    atomic = False  # PostgreSQL builds an index concurrently only outside a transaction

    dependencies = [
        ("crm", "0009_contact_team_backfill"),
    ]

    operations = [
        migrations.RunPython(add_search_indexes, drop_search_indexes, elidable=True),
    ]
