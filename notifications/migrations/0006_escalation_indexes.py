"""The escalation job's two partial indexes (notifications.escalation), built concurrently on
PostgreSQL: notifications_notification is the largest table the daily job writes, and a plain
CREATE INDEX would hold up its writes for the whole build. Apart from 0005's columns, so that an
interrupted build is simply run again."""

from django.db import migrations, models

from crm.indexes import AddIndexWithoutLocking


class Migration(migrations.Migration):
    atomic = False  # PostgreSQL builds an index concurrently only outside a transaction

    dependencies = [
        ("notifications", "0005_working_time_deadlines"),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="notification",
            index=models.Index(
                condition=models.Q(
                    ("blocking", True),
                    ("escalated_at", None),
                    ("status", "open"),
                    ("escalate_at__isnull", False),
                ),
                fields=["escalate_at"],
                name="notification_to_escalate",
            ),
        ),
        AddIndexWithoutLocking(
            model_name="notification",
            index=models.Index(
                condition=models.Q(("blocking", True), ("reminded_at", None), ("status", "open")),
                fields=["expires_at"],
                name="notification_to_remind",
            ),
        ),
    ]
