from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from crm.links import validate_link


class ObjectKind(models.TextChoices):
    TASK = "task", "Task"
    OPPORTUNITY = "opportunity", "Opportunity"
    EVENT = "event", "Event"
    INVOICE = "invoice", "Invoice"
    DISPATCH = "dispatch", "Dispatch"
    # Not about one object: news for the user (a PARC summary, a mailbox to reconnect), with
    # a link of its own.
    NOTICE = "notice", "Notice"


class ReminderRule(models.Model):
    """A rule the daily job applies: which objects, which date, how early, to whom, and
    whether the notification blocks the user until it is dealt with."""

    class Trigger(models.TextChoices):
        DUE = "due", "Its date is near or past"
        UNTOUCHED = "untouched", "Untouched for a number of days (opportunities)"

    name = models.CharField(max_length=120, unique=True)
    object_kind = models.CharField(
        max_length=16,
        choices=[
            c for c in ObjectKind.choices if c[0] not in (ObjectKind.DISPATCH, ObjectKind.NOTICE)
        ],
        help_text="Tasks count their due time, opportunities their expected close, events "
        "their start, invoices their due date (voucher date + payment terms).",
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.DUE)
    statuses = models.JSONField(
        default=list,
        blank=True,
        help_text='Only objects in these statuses/stages, e.g. ["open"] or ["proposal", '
        '"negotiation"]. Empty: every open one.',
    )
    lead_time = models.DurationField(
        default=timedelta(days=1),
        help_text="How long before the date it fires (0 = only once the date has passed).",
    )
    untouched_days = models.PositiveSmallIntegerField(
        default=14, help_text="For 'untouched' rules: days without any change."
    )
    notify_owner = models.BooleanField(default=True)
    notify_manager = models.BooleanField(default=False, help_text="The owner's manager.")
    notify_account_manager = models.BooleanField(
        default=False, help_text="The account manager of the object's account."
    )
    blocking = models.BooleanField(
        default=False,
        help_text="Sales-process compliance: while open, the user can only resolve it; past "
        "its grace period, their sessions end and login is refused until unlocked.",
    )
    grace_period = models.DurationField(
        default=timedelta(hours=24),
        validators=[MinValueValidator(timedelta(0))],
        help_text="Blocking only: time to resolve before the user is locked out. With the "
        "working calendar on, it is working time: 8 hours is one 09:00–17:00 day.",
    )
    # Escalation before the block, each level off by default (the seed's behaviour).
    remind_when_due = models.BooleanField(
        default=False,
        help_text="Blocking only: email the user when the object's date arrives and the item "
        "is still open.",
    )
    manager_copy_at = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(99)],
        help_text="Blocking only: copy the item to the user's manager once this share of the "
        "grace period has run (per cent, e.g. 50); 0: never.",
    )
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class Notification(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed (object done)"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    source = models.CharField(
        max_length=64, help_text="rule:<id>, reminder:<id> or overdue: what created it."
    )
    rule = models.ForeignKey(ReminderRule, null=True, blank=True, on_delete=models.SET_NULL)
    object_kind = models.CharField(max_length=16, choices=ObjectKind.choices)
    object_id = models.BigIntegerField()
    title = models.CharField(max_length=300)
    note = models.TextField(blank=True)
    link = models.CharField(
        max_length=500,
        blank=True,
        default="",
        db_default="",  # the daily job's INSERT … SELECT names no link
        validators=[validate_link],
        help_text="Where a notice leads (notices only): a path on this site (/…) or an "
        "http(s) address.",
    )
    expires_at = models.DateTimeField(help_text="The object's date this notification is about.")
    blocking = models.BooleanField(default=False)
    grace_deadline = models.DateTimeField(null=True, blank=True)
    # How the deadline is counted (notifications.deadlines): `grace` of working time from
    # `grace_from` when the working calendar is on, of wall-clock time when it is off. No
    # grace: a deadline a person set (expires_at), moved only past days off.
    grace_from = models.DateTimeField(null=True, blank=True)
    grace = models.DurationField(null=True, blank=True)
    deadline_note = models.CharField(
        max_length=300,
        blank=True,
        default="",
        db_default="",
        help_text="Why the deadline is not the wall-clock one (days off on the way).",
    )
    escalate_at = models.DateTimeField(
        null=True, blank=True, help_text="When the manager gets a copy (the rule's share)."
    )
    escalated_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    visible_from = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One notification per source, object, user and date: re-running a day is a no-op,
            # a new date (the task was rescheduled) is a new episode.
            models.UniqueConstraint(
                fields=["source", "object_kind", "object_id", "user", "expires_at"],
                name="notification_once_per_episode",
            ),
            models.CheckConstraint(
                condition=Q(blocking=False) | Q(grace_deadline__isnull=False),
                name="blocking_has_grace_deadline",
            ),
        ]
        indexes = [
            models.Index(
                fields=["user", "object_kind", "object_id"],
                condition=Q(status="open", blocking=True),
                name="notification_open_blocking",
            ),
            # The dashboard: a user's open notifications by date, one range per urgency
            # bucket, and their count without reading the rows.
            models.Index(
                fields=["user", "expires_at"],
                include=["blocking", "visible_from"],
                condition=Q(status="open"),
                name="notification_open_by_date",
            ),
            models.Index(
                fields=["object_kind", "object_id"],
                condition=Q(status="open"),
                name="notification_open_by_object",
            ),
            # The escalation job's two questions, each over the few rows still waiting.
            models.Index(
                fields=["escalate_at"],
                condition=Q(status="open", blocking=True, escalated_at=None)
                & Q(escalate_at__isnull=False),
                name="notification_to_escalate",
            ),
            models.Index(
                fields=["expires_at"],
                condition=Q(status="open", blocking=True, reminded_at=None),
                name="notification_to_remind",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class AuditEvent(models.Model):
    """Every block, unlock, extension and resolution of a blocking notification."""

    class Action(models.TextChoices):
        BLOCKED = "blocked", "Locked out"
        UNLOCKED = "unlocked", "Unlocked"
        RESOLVED = "resolved", "Resolved"
        REMINDED = "reminded", "Reminded (due)"
        ESCALATED = "escalated", "Copied to the manager"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who did it; empty when the system did.",
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    notification = models.ForeignKey(Notification, null=True, blank=True, on_delete=models.SET_NULL)
    at = models.DateTimeField()
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-at"])]


class AlertSettings(models.Model):
    """Settings of the expired-jobs alert, edited in the admin (one row)."""

    threshold = models.DurationField(
        default=timedelta(hours=3),
        help_text="How far past its due time a dispatch or task must be to raise an alert.",
    )
    lookback = models.DurationField(
        default=timedelta(days=2),
        help_text="Only jobs that crossed the threshold within this window alert, so the first "
        "run (or one after long downtime) does not send every old overdue job at once.",
    )
    recipients = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        help_text="The designated list: alerted about every overdue job, besides its owner "
        "and the owner's manager.",
    )
    # Both act only while the working calendar is on (crm.WorkingCalendar.enabled).
    working_time = models.BooleanField(
        default=False,
        help_text="Count the threshold in the owner's working time (a task due at 16:00 "
        "on a 09:00–17:00 day alerts at 11:00 the next working day). Off: the wall clock.",
    )
    hold_off_duty = models.BooleanField(
        default=True,
        help_text="An alert to someone off duty waits for their next working hour (a "
        "dispatch's, for its team's next shift when the team has shifts), unless they chose "
        "alerts at once.",
    )

    class Meta:
        verbose_name = verbose_name_plural = "expired-job alert settings"

    def __str__(self) -> str:
        return "Expired-job alert settings"

    @classmethod
    def current(cls) -> "AlertSettings":
        return cls.objects.first() or cls.objects.create()


class OverdueAlert(models.Model):
    """One row per overdue episode of a dispatch or task: the run 30 minutes later finds it
    and stays quiet; a new due time is a new episode."""

    object_kind = models.CharField(max_length=16, choices=ObjectKind.choices)
    object_id = models.BigIntegerField()
    due_at = models.DateTimeField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    title = models.CharField(max_length=300)
    alerted_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["object_kind", "object_id", "due_at"], name="overdue_alert_once"
            )
        ]
        indexes = [models.Index(fields=["alerted_at"])]


class ObjectChange(models.Model):
    """A mark that objects notifications are about changed: `kind`'s ids from `first_id` to
    `last_id`, a block (-1: every id; kind "*": every kind), written by transaction `xid`.
    PostgreSQL's triggers write them (notifications.changes); the daily job reads them to
    re-run a day over the blocks that changed only, and deletes those it saw."""

    kind = models.CharField(max_length=16)
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    xid = models.BigIntegerField()


class DailySweep(models.Model):
    """The last complete notifications_daily run on PostgreSQL: its as_of and what its rules
    were (a digest), so that a re-run for the same moment with the same rules reads only what
    changed."""

    as_of = models.DateTimeField()
    rules = models.CharField(max_length=64)
