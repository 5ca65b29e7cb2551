"""The nurture P2 sequence: email templates, the ordered steps of a sequence, and each lead's
enrollment in it with a row per step sent.

An RPH lead is enrolled when its status becomes "nurture_p2", however that happens: a
database trigger on crm_rph (migration 0002) writes the enrollment, so a QuerySet.update() or
an import enrols as surely as the admin does. Leaving the status stops the enrollment there
too; coming back starts a new one."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from crm.models import RPH
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


def outbox_key(enrollment_id: int, step_id: int) -> str:
    return f"nurture:{enrollment_id}:{step_id}"
