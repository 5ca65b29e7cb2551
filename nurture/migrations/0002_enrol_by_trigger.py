"""The trigger on crm_rph that enrols leads entering Nurture P2 (see nurture/triggers.py)."""

from django.db import migrations


def install(apps, schema_editor):
    from nurture import triggers

    triggers.install(schema_editor.connection)


def uninstall(apps, schema_editor):
    from nurture import triggers

    triggers.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("nurture", "0001_sequences_and_enrollments")]

    operations = [migrations.RunPython(install, uninstall)]
