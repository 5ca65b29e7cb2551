"""A rep's leads in one status (the lead list's status filter): PostgreSQL counted them by
ANDing the owner's index with the status index, whose one status holds 400,000 entries at a
million leads (23 ms a page); this index holds a rep's leads by status, in the list's order,
and counts them alone. Built concurrently (crm.indexes): crm_rph holds a million rows or more
in a large company, and a plain CREATE INDEX would block every write to it."""

from django.db import migrations, models

from crm.indexes import AddIndexWithoutLocking


class Migration(migrations.Migration):
    atomic = False  # PostgreSQL builds an index concurrently only outside a transaction

    dependencies = [
        ("crm", "0010_prefix_search_indexes"),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="rph",
            index=models.Index(
                fields=["owner", "status", "-last_activity_at", "-id"],
                name="rph_owner_status_activity",
            ),
        ),
    ]
