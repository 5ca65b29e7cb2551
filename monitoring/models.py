"""What the bug detector keeps: errors grouped by fingerprint, Beat's heartbeat, and the daily
reports sent to the administrators."""

from django.conf import settings
from django.db import models


class ErrorEvent(models.Model):
    """Every ERROR record and unhandled exception with the same fingerprint, counted in one row
    (one upsert per occurrence, see monitoring.capture). The message, traceback and context are
    the latest occurrence's, with secrets scrubbed."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    fingerprint = models.CharField(
        max_length=64,
        unique=True,
        help_text="SHA-256 of what groups occurrences: the exception type and the innermost "
        "frame in Vigil's own code, or the logger and message template.",
    )
    title = models.CharField(max_length=300)
    exception_type = models.CharField(max_length=200, blank=True)
    logger = models.CharField(max_length=200)
    level = models.CharField(max_length=16)
    location = models.CharField(
        max_length=300, blank=True, help_text="The innermost frame in Vigil's own code."
    )
    message = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    context = models.JSONField(
        default=dict, blank=True, help_text="Request, job run or command it happened in."
    )
    count = models.PositiveBigIntegerField(default=1, help_text="Occurrences, ever.")
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    # Occurrences per company day, for the two latest days: enough for the report about
    # yesterday to count its day even after today's first occurrences.
    day = models.DateField()
    day_count = models.PositiveBigIntegerField(default=1)
    previous_day = models.DateField(null=True, blank=True)
    previous_day_count = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    regression = models.BooleanField(
        default=False, help_text="It happened again after it was marked resolved."
    )
    reopened_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        indexes = [
            models.Index(fields=["-last_seen"]),
            models.Index(fields=["day"]),
            models.Index(fields=["previous_day"]),
        ]

    def __str__(self) -> str:
        return self.title

    def count_on(self, day) -> int:
        if day == self.day:
            return self.day_count
        return self.previous_day_count if day == self.previous_day else 0


class Heartbeat(models.Model):
    """The last time a process showed it is alive; for Beat, when it last sent a task."""

    name = models.CharField(max_length=32, primary_key=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"


class BugReport(models.Model):
    """The daily report, as it was emailed to the administrators (one per company day)."""

    day = models.DateField(unique=True, help_text="The company day the report covers.")
    as_of = models.DateTimeField(help_text="The time the report was made for.")
    all_clear = models.BooleanField(default=False)
    counts = models.JSONField(default=dict, blank=True)
    subject = models.CharField(max_length=300)
    html = models.TextField()
    text = models.TextField()

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"Bug report for {self.day:%Y-%m-%d}"
