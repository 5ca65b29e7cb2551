from django.apps import AppConfig
from django.db.models.signals import post_migrate


def reinstall_trigger(sender, using, **kwargs) -> None:
    """SQLite loses a table's triggers when a migration rebuilds it: put them back."""
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    from nurture import triggers

    connection = connections[using]
    if (
        MigrationRecorder(connection)
        .migration_qs.filter(app="nurture", name="0002_enrol_by_trigger")
        .exists()
    ):
        triggers.install(connection)


class NurtureConfig(AppConfig):
    name = "nurture"
    verbose_name = "Nurture P2"

    def ready(self) -> None:
        post_migrate.connect(reinstall_trigger, sender=self)
        from nurture import receivers  # noqa: F401 - a lead's reply, seen by the mailbox sync
