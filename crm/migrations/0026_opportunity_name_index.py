"""The admin lists opportunities by name (its list and the autocomplete that pages through
it), and no index held that order: every page sorted the whole table (a million
opportunities: 650 ms, spilled to disk).

Built concurrently (crm.indexes): crm_opportunity holds a million rows or more in a large
company, and a plain CREATE INDEX would block every write to it for the whole build."""

from django.db import migrations, models

from crm.indexes import AddIndexWithoutLocking


class Migration(migrations.Migration):
    atomic = False  # PostgreSQL builds an index concurrently only outside a transaction

    dependencies = [
        ("crm", "0025_contact_team_search"),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="opportunity",
            index=models.Index(fields=["name", "id"], name="opportunity_name"),
        ),
    ]
