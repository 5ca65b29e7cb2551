from django.conf import settings
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
        SUPPRESSED = "suppressed", "Suppressed (every recipient is on the suppression list)"

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
        help_text="Recipients left out (when queued or at send time), each with the reason.",
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


class Suppression(models.Model):
    """An address no email of Vigil may go to. Lifting keeps the row (lifted_at set), so the
    daily build, which skips addresses already listed, does not bring a lifted address back."""

    class Source(models.TextChoices):
        REJECTED = "rejected", "Rejected contact"
        BOUNCE = "bounce", "Bounce"
        COMPLAINT = "complaint", "Spam complaint"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribe"
        MANUAL = "manual", "Added by staff"

    address = models.CharField(
        max_length=320,
        unique=True,
        help_text="Trimmed, lower-cased, with an IDN domain in its ASCII (punycode) form.",
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    reason = models.CharField(max_length=500, help_text="Why the address is suppressed.")
    created_at = models.DateTimeField()
    lifted_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when an administrator lifted the suppression."
    )

    class Meta:
        permissions = [("lift_suppression", "Can lift a suppression")]

    def __str__(self) -> str:
        return self.address

    @property
    def active(self) -> bool:
        return self.lifted_at is None


class SuppressionLift(models.Model):
    """Audit: an administrator lifted a suppression (who, when, why)."""

    suppression = models.ForeignKey(Suppression, on_delete=models.CASCADE, related_name="lifts")
    address = models.CharField(max_length=320)
    previous_source = models.CharField(max_length=16, choices=Suppression.Source.choices)
    previous_reason = models.CharField(max_length=500)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    lifted_at = models.DateTimeField()
    why = models.TextField()

    def __str__(self) -> str:
        return f"{self.address} lifted {self.lifted_at:%Y-%m-%d}"


class TrackingEvent(models.Model):
    """An ESP event (bounce, complaint, unsubscribe) already acted on. UNIQUE on the provider's
    event id: a provider that posts the same event again changes nothing."""

    event_id = models.CharField(max_length=255, unique=True)
    esp = models.CharField(max_length=32)
    event_type = models.CharField(max_length=32)
    recipient = models.CharField(max_length=320)
    received_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.esp} {self.event_type} {self.recipient}"
