"""Deadlines in working time (notifications.deadlines) and escalation before a block.

Columns are added with no default or a constant one (no table rewrite on PostgreSQL); the
blocking notifications already there get the grace they were given (their deadline less their
creation), so nothing moves until the working calendar is switched on. The two partial indexes
of the escalation job are built concurrently on PostgreSQL: notifications_notification is the
largest table the daily job writes, and a plain CREATE INDEX would hold up its writes."""

import datetime
import django.core.validators
from django.conf import settings
from django.db import migrations, models
from django.db.models import DurationField, ExpressionWrapper, F

from crm.indexes import AddIndexWithoutLocking


def grace_as_given(apps, schema_editor) -> None:
    Notification = apps.get_model("notifications", "Notification")
    blocking = Notification.objects.filter(blocking=True, grace_from=None)
    blocking.update(grace_from=F("created_at"))
    # A deadline a person set (set-by:…) has no grace: it is an instant.
    blocking.exclude(source__startswith="set-by:").filter(grace=None).update(
        grace=ExpressionWrapper(F("grace_deadline") - F("created_at"), output_field=DurationField())
    )


class Migration(migrations.Migration):
    atomic = False  # PostgreSQL builds an index concurrently only outside a transaction

    dependencies = [
        ("notifications", "0004_safe_links"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="alertsettings",
            name="hold_off_duty",
            field=models.BooleanField(
                default=True,
                help_text="An alert to someone off duty waits for their next working hour (a dispatch's, for its team's next shift when the team has shifts), unless they chose alerts at once.",
            ),
        ),
        migrations.AddField(
            model_name="alertsettings",
            name="working_time",
            field=models.BooleanField(
                default=False,
                help_text="Count the threshold in the owner's working time (a task due at 16:00 on a 09:00–17:00 day alerts at 11:00 the next working day). Off: the wall clock.",
            ),
        ),
        migrations.AddField(
            model_name="notification",
            name="deadline_note",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="Why the deadline is not the wall-clock one (days off on the way).",
                max_length=300,
            ),
        ),
        migrations.AddField(
            model_name="notification",
            name="escalate_at",
            field=models.DateTimeField(
                blank=True, help_text="When the manager gets a copy (the rule's share).", null=True
            ),
        ),
        migrations.AddField(
            model_name="notification",
            name="escalated_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="notification",
            name="grace",
            field=models.DurationField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="notification",
            name="grace_from",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="notification",
            name="reminded_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="reminderrule",
            name="manager_copy_at",
            field=models.PositiveSmallIntegerField(
                default=0,
                help_text="Blocking only: copy the item to the user's manager once this share of the grace period has run (per cent, e.g. 50); 0: never.",
                validators=[django.core.validators.MaxValueValidator(99)],
            ),
        ),
        migrations.AddField(
            model_name="reminderrule",
            name="remind_when_due",
            field=models.BooleanField(
                default=False,
                help_text="Blocking only: email the user when the object's date arrives and the item is still open.",
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("blocked", "Locked out"),
                    ("unlocked", "Unlocked"),
                    ("resolved", "Resolved"),
                    ("reminded", "Reminded (due)"),
                    ("escalated", "Copied to the manager"),
                ],
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="reminderrule",
            name="grace_period",
            field=models.DurationField(
                default=datetime.timedelta(days=1),
                help_text="Blocking only: time to resolve before the user is locked out. With the working calendar on, it is working time: 8 hours is one 09:00–17:00 day.",
            ),
        ),
        migrations.RunPython(grace_as_given, migrations.RunPython.noop, atomic=True),
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
