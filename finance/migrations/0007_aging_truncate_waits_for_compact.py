"""The aging rollup's TRUNCATE trigger takes the rollup's table lock before it empties it: a
truncate during `compact` waited for the folding's row locks, then deleted with a snapshot
from before the fold committed, and left the folded rows behind (finance/triggers.py). The
functions and triggers are created again (CREATE OR REPLACE: no data is touched)."""

from django.db import migrations


def reinstall(apps, schema_editor) -> None:
    from crm.triggers import execute
    from finance import triggers

    execute(schema_editor.connection, {"postgresql": triggers.POSTGRESQL_AGING})


class Migration(migrations.Migration):
    dependencies = [("finance", "0006_invoice_team_backfill_and_aging")]

    operations = [migrations.RunPython(reinstall, migrations.RunPython.noop)]
