"""Deadlines in working time (notifications.deadlines) and escalation before a block.

Columns are added with no default or a constant one (no table rewrite on PostgreSQL). The open
blocking notifications already there get the grace they were given, so nothing moves until the
working calendar is switched on: from their creation, or from their last unlock (whose
extension is the grace since); a deadline a person set and nobody extended stays an instant.
Closed rows are history and are left as they are. 0006 builds the escalation job's indexes."""

import datetime
import django.core.validators
from django.conf import settings
from django.db import migrations, models
from django.db.models import DurationField, ExpressionWrapper, F, OuterRef, Subquery


def grace_as_given(apps, schema_editor) -> None:
    Notification = apps.get_model("notifications", "Notification")
    AuditEvent = apps.get_model("notifications", "AuditEvent")
    waiting = Notification.objects.filter(blocking=True, status="open", grace_from=None)
    last_unlock = (
        AuditEvent.objects.filter(notification=OuterRef("pk"), action="unlocked")
        .order_by("-at")
        .values("at")[:1]
    )
    unlocked = waiting.annotate(unlocked_at=Subquery(last_unlock)).exclude(unlocked_at=None)
    # Few rows (open, blocking and unlocked): one UPDATE each.
    for pk, at, deadline in list(unlocked.values_list("pk", "unlocked_at", "grace_deadline")):
        Notification.objects.filter(pk=pk).update(grace_from=at, grace=deadline - at)
    waiting = waiting.filter(grace_from=None)
    # A deadline a person set (set-by:…) has no grace: it is an instant.
    waiting.exclude(source__startswith="set-by:").update(
        grace_from=F("created_at"),
        grace=ExpressionWrapper(F("grace_deadline") - F("created_at"), output_field=DurationField()),
    )
    waiting.filter(source__startswith="set-by:").update(grace_from=F("created_at"))


class Migration(migrations.Migration):
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
                validators=[django.core.validators.MinValueValidator(datetime.timedelta(0))],
            ),
        ),
        migrations.RunPython(grace_as_given, migrations.RunPython.noop),
    ]
