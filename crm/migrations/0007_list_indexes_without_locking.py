"""Indexes for the contact and account lists and the search box, built without locking the
tables: crm_contact and crm_account hold a million rows or more in a large company, and a plain
CREATE INDEX would block every write to them (a sync, a conversion, a rep's edit) for the whole
build. Hence CREATE INDEX CONCURRENTLY on PostgreSQL (crm.indexes), outside a transaction.

- contact_name, contact_status_name, contact_account_name: the contact list's order (name),
  within a status and within an account.
- account_team_name, account_created, account_team_created, account_manager_name: the account
  list's orders (name, newest), within a team or an account manager's accounts.
- trigram GIN indexes on UPPER(name) of crm_account, crm_contact and crm_opportunity and on
  UPPER(email) of crm_contact: the lists' and the search box's icontains."""

from django.db import migrations, models

from crm.indexes import AddIndexWithoutLocking, add_trigram_indexes, drop_trigram_indexes

SEARCHED = {
    "crm_account": ("name",),
    "crm_contact": ("name", "email"),
    "crm_opportunity": ("name",),
}


def add_search_indexes(apps, schema_editor) -> None:
    add_trigram_indexes(schema_editor, SEARCHED)


def drop_search_indexes(apps, schema_editor) -> None:
    drop_trigram_indexes(schema_editor, SEARCHED)


class Migration(migrations.Migration):
    atomic = False  # PostgreSQL builds an index concurrently only outside a transaction

    dependencies = [
        ("crm", "0006_crm_pages"),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="contact",
            index=models.Index(fields=["name", "id"], name="contact_name"),
        ),
        AddIndexWithoutLocking(
            model_name="contact",
            index=models.Index(fields=["status", "name", "id"], name="contact_status_name"),
        ),
        AddIndexWithoutLocking(
            model_name="contact",
            index=models.Index(fields=["account", "name", "id"], name="contact_account_name"),
        ),
        AddIndexWithoutLocking(
            model_name="account",
            index=models.Index(fields=["team", "name", "id"], name="account_team_name"),
        ),
        AddIndexWithoutLocking(
            model_name="account",
            index=models.Index(fields=["-created_at", "-id"], name="account_created"),
        ),
        AddIndexWithoutLocking(
            model_name="account",
            index=models.Index(fields=["team", "-created_at", "-id"], name="account_team_created"),
        ),
        AddIndexWithoutLocking(
            model_name="account",
            index=models.Index(
                fields=["account_manager", "name", "id"], name="account_manager_name"
            ),
        ),
        migrations.RunPython(add_search_indexes, drop_search_indexes, elidable=True),
    ]
