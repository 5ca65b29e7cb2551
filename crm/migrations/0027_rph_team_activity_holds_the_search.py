"""A manager's leads (their team's, newest activity first) are walked for a search from an
index that holds the name, company and email it tests, without reading the table. Without
them, PostgreSQL read everyone's leads by activity and dropped the other teams' instead (the
leads' activity follows the table's order, so it costed that read as sequential): a manager's
"kowalski" walked 60,000 leads for 6,000 of the team's, 18 ms; now 6,000 index entries, 8 ms.

Built and dropped concurrently (crm.indexes): crm_rph holds a million rows or more in a large
company, and a plain CREATE INDEX would block every write to it for the whole build."""

from django.db import migrations, models

from crm.indexes import AddIndexWithoutLocking, RemoveIndexWithoutLocking


class Migration(migrations.Migration):
    atomic = False  # PostgreSQL builds an index concurrently only outside a transaction

    dependencies = [
        ("crm", "0026_opportunity_name_index"),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="rph",
            index=models.Index(
                fields=["team", "-last_activity_at", "-id"],
                include=["name", "company", "email"],
                name="rph_team_activity_search",
            ),
        ),
        RemoveIndexWithoutLocking(model_name="rph", name="rph_team_activity"),
    ]
