"""The nurture P2 sequence: email templates, the ordered steps of a sequence, and each lead's
enrollment in it with a row per step sent.

An RPH lead is enrolled when its status becomes "nurture_p2", however that happens: a
database trigger on crm_rph (migration 0002) writes the enrollment, so a QuerySet.update() or
an import enrols as surely as the admin does. Leaving the status stops the enrollment there
too; coming back starts a new one.

When the emails go out: SendSettings (a send window in the lead's day, hourly caps; one row
in the admin), each enrollment's stored window, and SendCount, what the caps count."""

from datetime import time

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q

from crm.models import RPH, validate_work_days
from nurture import sandbox


class EmailTemplate(models.Model):
    name = models.CharField(max_length=200, unique=True)
    subject = models.CharField(
        max_length=300,
        help_text="One line of text; merge fields allowed, e.g. {{ company }}: a question.",
    )
    body = models.TextField(
        help_text="HTML. Merge fields: "
        + ", ".join(f"{{{{ {name} }}}} ({what})" for name, what in sandbox.MERGE_FIELDS.items())
        + ". Also {% if %} and the filters "
        + ", ".join(sandbox.FILTERS)
        + ". An unsubscribe footer is added to every email.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "nurture email template"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        for field in ("subject", "body"):
            try:
                sandbox.check(getattr(self, field))
            except sandbox.TemplateRefused as exc:
                errors[field] = str(exc)
        if errors:
            raise ValidationError(errors)


class Sequence(models.Model):
    name = models.CharField(max_length=200, unique=True)
    active = models.BooleanField(
        default=False,
        help_text="The sequence leads entering Nurture P2 are enrolled in. One at a time; "
        "leads already enrolled elsewhere finish where they are.",
    )
    final_wait_days = models.PositiveSmallIntegerField(
        default=14,
        help_text="Days after the last step without a reply before the lead is closed for "
        "inactivity.",
    )

    class Meta:
        verbose_name = "nurture sequence"
        constraints = [
            models.UniqueConstraint(
                fields=["active"],
                condition=Q(active=True),
                name="nurture_one_active_sequence",
                violation_error_message="Another sequence is active: deactivate it first.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Step(models.Model):
    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField(
        default=0, help_text="Steps go in this order (lowest first); renumber to reorder."
    )
    template = models.ForeignKey(EmailTemplate, on_delete=models.PROTECT, related_name="steps")
    wait_days = models.PositiveSmallIntegerField(
        help_text="Days after the previous step; for the first step, after enrollment."
    )

    class Meta:
        ordering = ["sequence", "order", "pk"]
        indexes = [models.Index(fields=["sequence", "order"])]

    def __str__(self) -> str:
        return f"{self.sequence} #{self.order}: {self.template}"


class Enrollment(models.Model):
    """One lead going through one sequence: which step is next and when it is due."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REPLIED = "replied", "Replied"
        CLOSED = "closed", "Closed for inactivity"
        STOPPED = "stopped", "Stopped"

    rph = models.ForeignKey(RPH, on_delete=models.CASCADE, related_name="nurture_enrollments")
    sequence = models.ForeignKey(Sequence, on_delete=models.PROTECT, related_name="enrollments")
    step = models.ForeignKey(
        Step,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The next step to send; empty once every step is sent.",
    )
    enrolled_at = models.DateTimeField()
    next_due_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The next step goes out on this day's run (or the first run after it); "
        "once every step is sent, the day the lead is closed without a reply.",
    )
    last_run_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a run last worked on it: at most one step a day, even catching up.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    stop_reason = models.CharField(max_length=500, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(
        blank=True, help_text="Why the last run could not send the step; it tries again."
    )
    paused_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="An automatic reply from the lead (out of office) paused the sequence: its "
        "next step goes out on this day's run at the earliest.",
    )
    # Defaults in the database too: the trigger and enrol_missing insert rows with SQL.
    pause_reason = models.CharField(
        max_length=500,
        blank=True,
        default="",
        db_default="",
        help_text="The automatic reply that paused it.",
    )
    delivery_note = models.CharField(
        max_length=500,
        blank=True,
        default="",
        db_default="",
        help_text="The last delivery report about the lead's address that did not stop the "
        "sequence: a delay, or a failure not matched to an email Vigil sent.",
    )
    # Empty means "to be worked out": whatever moves the next step (a step sent, a pause, the
    # lead's place, the settings) empties them, and the next run fills them in (windows.py).
    send_after = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The next step goes out at this instant at the earliest: the start of the "
        "lead's send window, or the next hour when an hourly cap held it back.",
    )
    send_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The end of that send window; a step not sent by then moves to the next one.",
    )

    class Meta:
        constraints = [
            # Enrolled once: the trigger, the job's catch-all and a retry all meet here.
            models.UniqueConstraint(
                fields=["rph"], condition=Q(status="active"), name="nurture_one_active_enrollment"
            )
        ]
        indexes = [
            models.Index(
                fields=["next_due_at"], condition=Q(status="active"), name="nurture_enrollment_due"
            ),
            models.Index(fields=["rph", "sequence"]),
            # A run with send windows claims by the first; the second finds the windows to
            # work out (empty, or passed unused).
            models.Index(
                fields=["send_after"], condition=Q(status="active"), name="nurture_send_after"
            ),
            models.Index(
                fields=["send_until"], condition=Q(status="active"), name="nurture_send_until"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rph} in {self.sequence} ({self.get_status_display()})"


class SentStep(models.Model):
    """A step done for an enrollment: its email queued (outbox key), or skipped and why."""

    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="sent")
    step = models.ForeignKey(Step, on_delete=models.PROTECT, related_name="+")
    outbox_key = models.CharField(max_length=255, blank=True)
    skipped = models.CharField(
        max_length=500, blank=True, help_text="Why nothing was sent (suppressed, invalid address)."
    )
    at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "step"], name="nurture_step_once")
        ]

    def __str__(self) -> str:
        return f"{self.enrollment_id}:{self.step_id}"


class SendSettings(models.Model):
    """When nurture emails go out (one row, edited in the admin): a send window in each lead's
    own working day, and hourly caps. The defaults change nothing: no window, no cap."""

    window = models.BooleanField(
        default=False,
        help_text="Send each step inside the window below, in the lead's time zone. Off: a "
        "day's steps go out from 08:00 company time, as they always have.",
    )
    window_days = models.CharField(
        max_length=7,
        blank=True,  # refused in clean(), in one line
        default="12345",
        validators=[validate_work_days],
        help_text="The days emails go out, Monday 1 … Sunday 7, e.g. 234 for Tuesday to Thursday.",
    )
    window_starts = models.TimeField(
        default=time(9), help_text="The window opens at this time of the lead's day."
    )
    window_ends = models.TimeField(
        default=time(17), help_text="And closes at this time of the same day (after the start)."
    )
    skip_holidays = models.BooleanField(
        default=True,
        help_text="Send nothing on a public holiday of the lead's country (the holidays "
        "library's), moving the step to the next window.",
    )
    domain_hourly_cap = models.PositiveIntegerField(
        default=0,
        help_text="At most this many nurture emails an hour to one recipient domain (e.g. "
        "gmail.com), counted across all workers; the rest wait for the next hour. 0: no cap.",
    )
    mailbox_hourly_cap = models.PositiveIntegerField(
        default=0,
        help_text="At most this many nurture emails an hour from one sending address (the "
        "server's DEFAULT_FROM_EMAIL), across all workers; the rest wait. 0: no cap.",
    )

    class Meta:
        verbose_name = verbose_name_plural = "nurture send settings"

    def __str__(self) -> str:
        return "Nurture send settings"

    WINDOW_FIELDS = ("window", "window_days", "window_starts", "window_ends", "skip_holidays")

    def save(self, *args, **kwargs) -> None:
        # A new window: every stored one was worked out under the old settings, and the next
        # run works them out again. In one transaction (the settings' row first, as a run
        # takes it), so a run sees both or neither. New caps move no window.
        with transaction.atomic():
            before = (
                SendSettings.objects.filter(pk=self.pk).values(*self.WINDOW_FIELDS).first()
                if self.pk
                else None
            )
            super().save(*args, **kwargs)
            if before is not None and all(
                before[name] == getattr(self, name) for name in self.WINDOW_FIELDS
            ):
                return
            Enrollment.objects.filter(status=Enrollment.Status.ACTIVE).exclude(
                send_after=None, send_until=None
            ).update(send_after=None, send_until=None)

    def clean(self) -> None:
        if not self.window_days:
            raise ValidationError({"window_days": "Name at least one day of the window."})
        if self.window_ends <= self.window_starts:
            raise ValidationError({"window_ends": "The window ends after it starts, the same day."})

    @classmethod
    def current(cls, *, lock: bool = False) -> "SendSettings":
        # Not created here: two runners at once would each create one.
        rows = cls.objects.order_by("pk")
        if lock:
            rows = rows.select_for_update(no_key=True)
        return rows.first() or cls()

    @property
    def capped(self) -> bool:
        return bool(self.domain_hourly_cap or self.mailbox_hourly_cap)


class SendCount(models.Model):
    """Nurture emails queued in one hour to one recipient domain or from one sending address:
    what the hourly caps count, shared by every worker."""

    class Kind(models.TextChoices):
        DOMAIN = "domain", "Recipient domain"
        MAILBOX = "mailbox", "Sending address"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(max_length=255)
    hour = models.DateTimeField(help_text="The start of the hour (UTC).")
    sent = models.PositiveIntegerField(default=0)
    # What the last statement granted: PostgreSQL's RETURNING sees only the new row (caps.py).
    granted = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "name", "hour"], name="nurture_count_once")
        ]
        indexes = [models.Index(fields=["hour"], name="nurture_count_hour")]

    def __str__(self) -> str:
        return f"{self.name} {self.hour:%Y-%m-%d %H}:00: {self.sent}"


def outbox_key(enrollment_id: int, step_id: int) -> str:
    return f"nurture:{enrollment_id}:{step_id}"
