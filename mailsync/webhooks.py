"""The ESP's tracking webhook: bounces, complaints and unsubscribes it reports put the address
on the suppression list, once per provider event.

The URL is public. A post without the secret is anyone's: refused with 403 and logged as a
WARNING (the access log counts them), never as an ERROR, which the bug detector would store and
put in the administrators' daily report. A signed post that is not a Postmark event is a 400."""

import hashlib
import json
import logging
from typing import Any

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.signals import AnymailTrackingEvent, EventType, tracking
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig
from django.db import IntegrityError, transaction
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from mailsync import suppression
from mailsync.models import Suppression, TrackingEvent

SOURCES = {
    EventType.BOUNCED: Suppression.Source.BOUNCE,
    EventType.COMPLAINED: Suppression.Source.COMPLAINT,
    EventType.UNSUBSCRIBED: Suppression.Source.UNSUBSCRIBE,
}
# A soft bounce (a full mailbox) heals; anymail reports it as "bounced" all the same.
TRANSIENT_BOUNCES = {"SoftBounce"}

log = logging.getLogger(__name__)

# The fields anymail reads from a Postmark event (or we store), with the types they may have;
# any other type would fail deep in anymail or the database as a server error.
TEXT_FIELDS = ("Type", "SuppressionReason", "Description", "Details", "MessageID", "Tag")
ADDRESS_FIELDS = ("Email", "Recipient")
TIME_FIELDS = ("DeliveredAt", "BouncedAt", "ReceivedAt", "ChangedAt")
MAX_ADDRESS = 320  # Suppression.address, TrackingEvent.recipient
TRACKING_RECORD_TYPES = {
    "Bounce",
    "Click",
    "Delivery",
    "Open",
    "SpamComplaint",
    "SubscriptionChange",
}


class MalformedEvent(ValueError):
    """A signed post that is not a Postmark event we can read."""


def tracking_payload(body: bytes) -> dict[str, Any]:
    """The Postmark event in a webhook body, with every field anymail and the suppression list
    read of the type they need. Raises MalformedEvent, in time linear in the body's length
    (json's C parser gives up on deep nesting with RecursionError, not a crash)."""
    try:
        event = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise MalformedEvent(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(event, dict):
        raise MalformedEvent("not a JSON object")
    record_type = event.get("RecordType")
    if not isinstance(record_type, str) or record_type not in TRACKING_RECORD_TYPES:
        # anymail reads an event without one as inbound mail, which this view is not for
        raise MalformedEvent("RecordType is not one of Postmark's tracking events")
    if not isinstance(event.get("Metadata", {}), dict):
        raise MalformedEvent("Metadata is not an object")
    event_id = event.get("ID", 0)
    if isinstance(event_id, bool) or not (isinstance(event_id, int) or _storable(event_id)):
        raise MalformedEvent("ID is neither a number nor text")
    for name in TEXT_FIELDS + ADDRESS_FIELDS:
        if event.get(name) is not None and not _storable(event[name]):
            raise MalformedEvent(f"{name} is not text")
    for name in ADDRESS_FIELDS:
        if len(suppression.normalise(event.get(name) or "")) > MAX_ADDRESS:
            raise MalformedEvent(f"{name} is too long")
    for name in TIME_FIELDS:
        if name in event and not _aware_time(event[name]):
            raise MalformedEvent(f"{name} is not a date and time with its zone")
    return event


def _storable(value: object) -> bool:
    """Text PostgreSQL can store: no NUL, no lone surrogate (JSON's "\\ud800")."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _aware_time(value: object) -> bool:
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well formed, but no such day or hour
        return False
    return parsed is not None and parsed.tzinfo is not None


class TrackingWebhookView(PostmarkTrackingWebhookView):
    """Postmark's tracking webhook, refusing every request while no WEBHOOK_SECRET is set
    (anymail itself would only warn and accept anyone's posts)."""

    warn_if_no_basic_auth = False

    def validate_request(self, request):
        if not self.basic_auth:
            raise AnymailWebhookValidationFailure("ANYMAIL WEBHOOK_SECRET is not configured")
        super().validate_request(request)

    def run_validators(self, request: HttpRequest) -> None:
        # anymail's refusal is a SuspiciousOperation, which Django logs as an ERROR.
        try:
            super().run_validators(request)
        except AnymailWebhookValidationFailure as exc:
            log.warning("Tracking webhook post refused: %s", exc)
            raise PermissionDenied(str(exc)) from None

    def parse_events(self, request: HttpRequest) -> list[AnymailTrackingEvent]:
        try:
            event = tracking_payload(request.body)
        except RequestDataTooBig:
            raise BadRequest("Tracking webhook post too large") from None
        except MalformedEvent as exc:
            raise BadRequest(f"Tracking webhook post malformed: {exc}") from None
        return [self.esp_to_anymail_event(event)]


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
