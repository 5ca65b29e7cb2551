"""The ESP's tracking webhook: bounces, complaints and unsubscribes it reports put the address
on the suppression list, once per provider event."""

import hashlib
from typing import Any

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.signals import AnymailTrackingEvent, EventType, tracking
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from django.db import IntegrityError, transaction
from django.dispatch import receiver
from django.utils import timezone

from mailsync import suppression
from mailsync.models import Suppression, TrackingEvent

SOURCES = {
    EventType.BOUNCED: Suppression.Source.BOUNCE,
    EventType.COMPLAINED: Suppression.Source.COMPLAINT,
    EventType.UNSUBSCRIBED: Suppression.Source.UNSUBSCRIBE,
}
# A soft bounce (a full mailbox) heals; anymail reports it as "bounced" all the same.
TRANSIENT_BOUNCES = {"SoftBounce"}


class TrackingWebhookView(PostmarkTrackingWebhookView):
    """Postmark's tracking webhook, refusing every request while no WEBHOOK_SECRET is set
    (anymail itself would only warn and accept anyone's posts)."""

    warn_if_no_basic_auth = False

    def validate_request(self, request):
        if not self.basic_auth:
            raise AnymailWebhookValidationFailure("ANYMAIL WEBHOOK_SECRET is not configured")
        super().validate_request(request)


def event_key(esp_name: str, event: AnymailTrackingEvent) -> str:
    """The provider's event id; for events that carry none (Postmark's subscription changes),
    a digest of what identifies them, so a repeated post is still recognised."""
    if event.event_id:
        return f"{esp_name}:{event.event_id}"
    parts = [esp_name, event.event_type, event.recipient, event.timestamp, event.message_id]
    return f"{esp_name}:sha256:{hashlib.sha256(repr(parts).encode()).hexdigest()}"


@receiver(tracking, dispatch_uid="mailsync.suppress_from_tracking")
def suppress_from_tracking(
    sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any
) -> bool:
    source = SOURCES.get(event.event_type)
    esp_type = event.esp_event.get("Type") if isinstance(event.esp_event, dict) else None
    if source is None or not event.recipient or esp_type in TRANSIENT_BOUNCES:
        return False
    now = timezone.now()
    detail = event.description or event.mta_response or event.reject_reason or ""
    reason = f"{esp_name} reported {event.event_type}" + (f": {detail}" if detail else "")
    try:
        with transaction.atomic():
            TrackingEvent.objects.create(
                event_id=event_key(esp_name, event)[:255],
                esp=esp_name,
                event_type=event.event_type,
                recipient=event.recipient[:320],
                received_at=now,
            )
            suppression.suppress(event.recipient, source, reason, event.timestamp or now)
    except IntegrityError:  # the same event posted again
        return False
    return True
