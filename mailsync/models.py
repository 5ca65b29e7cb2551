from django.db import models
from django.db.models import Q


class OutboxMessage(models.Model):
    """One email on its way out. Every email Vigil sends is a row here first, written in the
    same transaction as whatever caused it; the outbox_send job delivers it."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (gave up)"

    key = models.CharField(
        max_length=255,
        unique=True,
        help_text="Idempotency key: queueing the same key twice queues one email.",
    )
    source = models.CharField(max_length=64, help_text="What queued it (a job or feature).")
    from_email = models.CharField(max_length=255)
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    reply_to = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=998)
    text_body = models.TextField()
    html_body = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    dropped = models.JSONField(
        default=dict,
        blank=True,
        help_text="Recipients left out when it was queued, each with the reason.",
    )
    message_id = models.CharField(max_length=255, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="queued"), name="outbox_due"
            ),
            models.Index(
                fields=["claimed_until"], condition=Q(status="sending"), name="outbox_claimed"
            ),
            models.Index(fields=["source", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.subject} → {', '.join(self.to)}"
