"""The tasks, events and dispatches written before 0020's triggers take their team, 5,000 ids
a transaction (crm.triggers.backfill_in_batches: no million rows held locked at once; run
again, it changes nothing more); then the indexes a manager's dashboard reads are built, and
the dispatch index it read before (through the team's accounts) dropped, concurrently on
PostgreSQL (crm.indexes), outside a transaction: crm_task and crm_event hold a million rows or
more in a large company, and a plain CREATE INDEX would stop every task being written while
it builds."""

from django.db import migrations, models
from django.db.models import Q

from crm.indexes import AddIndexWithoutLocking, RemoveIndexWithoutLocking

OPEN = Q(status__in=["scheduled", "in_progress"])


def backfill(apps, schema_editor) -> None:
    from crm import triggers

    triggers.backfill_owned(schema_editor.connection)


class Migration(migrations.Migration):
    atomic = False  # batches of their own, and the indexes built concurrently

    dependencies = [
        ("crm", "0020_owned_teams"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
        AddIndexWithoutLocking(
            model_name="task",
            index=models.Index(fields=["team", "status", "due_at"], name="task_team_status_due"),
        ),
        AddIndexWithoutLocking(
            model_name="event",
            index=models.Index(fields=["team", "start_at"], name="event_team_start"),
        ),
        AddIndexWithoutLocking(
            model_name="dispatch",
            index=models.Index(
                fields=["account_team"],
                include=["team"],
                condition=OPEN,
                name="dispatch_open_by_account_team",
            ),
        ),
        RemoveIndexWithoutLocking(model_name="dispatch", name="dispatch_open_by_account"),
    ]
