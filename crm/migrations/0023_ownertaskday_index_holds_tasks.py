"""The due-task rollup's index holds the count: a manager's dashboard sums its team's rows
(about 20 people's days) from the index alone, where PostgreSQL scanned everyone's rows and
joined them to the team (3 ms of a manager's page at 200 people, twice: due and overdue).

crm_ownertaskday holds a row per person and day plus the day's changes until the night
compacts them (a few tens of thousands of rows), so the index is built plainly, in the
migration's transaction: for the milliseconds that takes, writes to crm_task (whose triggers
add to the rollup) wait. The index is read alone once autovacuum has marked the table's pages
all-visible, which it does after the night's compaction rewrites them."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0022_start_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="ownertaskday",
            index=models.Index(
                fields=["owner", "due_day"], include=("tasks",), name="ownertaskday_owner_day_tasks"
            ),
        ),
        migrations.RemoveIndex(model_name="ownertaskday", name="ownertaskday_owner_day"),
    ]
