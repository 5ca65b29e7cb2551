"""Writes and reads about a lead's nurture sequence that other apps and pages call."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Lower, Trim
from django.urls import reverse
from django.utils import timezone

from crm.models import RPH
from mailsync.models import OutboxMessage
from mailsync.suppression import DeliveryStatus
from notifications.services import notify
from nurture.models import Enrollment, SentStep

# A reply after the lead was closed for inactivity still brings it back.
REOPENED_BY_A_REPLY = {Enrollment.Status.ACTIVE, Enrollment.Status.CLOSED}


def record_reply(rph: RPH, at: datetime) -> Enrollment | None:
    """The lead replied (the mailbox sync saw it, or a user says so): its sequence stops, the
    lead becomes "contacted", and its owner is told. Returns the enrollment it stopped."""
    with transaction.atomic():
        # Waits for a run that holds this enrollment, so the reply lands after its step.
        enrollment = (
            Enrollment.objects.select_for_update()
            .filter(rph=rph)
            .order_by("-enrolled_at", "-pk")
            .first()
        )
        reopen = rph.status == RPH.Status.NURTURE_P2
        if enrollment is not None and enrollment.status in REOPENED_BY_A_REPLY:
            reopen = reopen or (
                rph.status == RPH.Status.CLOSED and enrollment.status == Enrollment.Status.CLOSED
            )
            enrollment.status = Enrollment.Status.REPLIED
            enrollment.stop_reason = f"replied on {timezone.localtime(at):%d %b %Y}"
            enrollment.stopped_at = at
            enrollment.next_due_at = None
            enrollment.save(update_fields=["status", "stop_reason", "stopped_at", "next_due_at"])
        else:
            enrollment = None
        # After the enrollment: leaving Nurture P2 fires the trigger, which stops what is active.
        if reopen:
            RPH.objects.filter(pk=rph.pk).update(status=RPH.Status.CONTACTED, status_changed_at=at)
            rph.status, rph.status_changed_at = RPH.Status.CONTACTED, at
        if rph.owner_id:
            notify(
                [rph.owner_id],
                source=f"nurture-reply:{rph.pk}:{at.isoformat()}",
                title=f"{rph} replied: their nurture emails stopped",
                link=reverse("nurture:rph", args=[rph.pk]),
                at=at,
            )
    return enrollment


def pause_for_auto_replies(replies: dict[int, tuple[datetime, str]]) -> int:
    """Leads answered automatically ({lead id: (when, subject)}: an out-of-office notice):
    each active sequence pauses for VIGIL_NURTURE_AUTO_REPLY_PAUSE_DAYS from the automatic
    reply. Its next step (or its close for inactivity) moves to the end of the pause if it
    fell within it, and the steps after it keep their waits from there; a step due after the
    pause anyway stays where it is. Not a reply: the lead's status does not change. A bounded
    number of queries, however many leads. Returns how many sequences it paused."""
    days = timedelta(days=settings.VIGIL_NURTURE_AUTO_REPLY_PAUSE_DAYS)
    with transaction.atomic():
        # Locked like record_reply: a run sending this enrollment's step finishes first.
        enrollments = list(
            Enrollment.objects.select_for_update().filter(
                rph_id__in=replies, status=Enrollment.Status.ACTIVE
            )
        )
        paused = [e for e in enrollments if _pause(e, *replies[e.rph_id], days)]
        fields = ["paused_until", "pause_reason", "next_due_at", "send_after", "send_until"]
        Enrollment.objects.bulk_update(paused, fields)
    return len(paused)


def _pause(enrollment: Enrollment, at: datetime, subject: str, days: timedelta) -> bool:
    until = at + days
    if at <= enrollment.enrolled_at or (enrollment.paused_until or at) >= until:
        return False  # older than the enrollment (a first sync), or seen already
    enrollment.paused_until = until
    reason = f"automatic reply on {timezone.localtime(at):%d %b %Y}: {subject}"
    enrollment.pause_reason = " ".join(reason.split())[:500]
    if enrollment.next_due_at is not None and enrollment.next_due_at < until:
        enrollment.next_due_at = until
        enrollment.send_after = enrollment.send_until = None  # the next run works it out again
    return True


def record_delivery_reports(statuses: list[DeliveryStatus]) -> int:
    """Delivery reports about leads' addresses, or about emails their sequences sent. A
    permanent failure to deliver an email Vigil sent to the lead (the address is suppressed
    for it by mailsync) stops the sequence, saying why; a delay is only noted on the
    enrollment. A report that ties no email of ours to the address changes nothing. Never a
    reply. A bounded number of queries. Returns how many sequences it stopped."""
    by_address: dict[str, list[DeliveryStatus]] = defaultdict(list)
    by_key: dict[str, list[DeliveryStatus]] = defaultdict(list)
    for status in statuses:
        # Only what a report says about an email Vigil sent to that address: the rest of a
        # report is whatever its sender wrote (and may name thousands of addresses).
        if status.action in {"failed", "delayed"} and status.outbox_key:
            by_address[status.address].append(status)
            if status.outbox_key.startswith("nurture:"):
                by_key[status.outbox_key].append(status)
    if not by_address:
        return 0
    sent: dict[int, list[str]] = defaultdict(list)
    for enrollment_id, key in SentStep.objects.filter(outbox_key__in=by_key).values_list(
        "enrollment_id", "outbox_key"
    ):
        sent[enrollment_id].append(key)
    active = Enrollment.objects.filter(status=Enrollment.Status.ACTIVE).annotate(
        address=Lower(Trim("rph__email"))
    )
    ids = set(active.filter(address__in=by_address).values_list("pk", flat=True)) | set(sent)
    with transaction.atomic():
        changed, stopped = [], 0
        for enrollment in active.select_for_update(of=("self",)).filter(pk__in=ids):
            about = by_address.get(enrollment.address, []) + [
                s for key in sent.get(enrollment.pk, []) for s in by_key[key]
            ]
            about = [s for s in about if s.at > enrollment.enrolled_at]
            if about:
                stopped += _record_delivery(enrollment, about)
                changed.append(enrollment)
        fields = ["status", "stop_reason", "stopped_at", "next_due_at", "delivery_note"]
        Enrollment.objects.bulk_update(changed, fields)
    return stopped


def _record_delivery(enrollment: Enrollment, statuses: list[DeliveryStatus]) -> bool:
    """Stop the enrollment for the first permanent failure of an email we sent, or note the
    latest report. Returns whether it stopped."""
    statuses = sorted(statuses, key=lambda s: s.at)
    for status in statuses:
        if status.failed and status.outbox_key:
            enrollment.status = Enrollment.Status.STOPPED
            enrollment.stop_reason = f"{status.address} {status.reason}"[:500]
            enrollment.stopped_at = status.at
            enrollment.next_due_at = None
            return True
    last = statuses[-1]
    day = f"{timezone.localtime(last.at):%d %b %Y}"
    code = f" {last.status}" if last.status else ""
    note = f"{day}: delivery to {last.address} {last.action}{code}"
    if last.diagnostic:
        note += f" ({last.diagnostic})"
    enrollment.delivery_note = note[:500]
    return False


@dataclass
class SentStepView:
    sent: SentStep
    position: int
    outbox_status: str
    outbox_error: str


def enrollments_of(rph: RPH) -> list[Enrollment]:
    """The lead's enrollments, newest first, each with `.steps_done` (SentStepView, with the
    outbox status of its email). Three queries."""
    enrollments = list(
        Enrollment.objects.filter(rph=rph)
        .select_related("sequence", "step__template")
        .order_by("-enrolled_at", "-pk")
    )
    sent = list(
        SentStep.objects.filter(enrollment__in=enrollments)
        .select_related("step__template")
        .order_by("at", "pk")
    )
    keys = [s.outbox_key for s in sent if s.outbox_key]
    outbox = {
        key: (status, error)
        for key, status, error in OutboxMessage.objects.filter(key__in=keys).values_list(
            "key", "status", "last_error"
        )
    }
    for enrollment in enrollments:
        mine = [s for s in sent if s.enrollment_id == enrollment.pk]
        enrollment.steps_done = [  # type: ignore[attr-defined]
            SentStepView(s, n, *_outbox_state(s, outbox)) for n, s in enumerate(mine, start=1)
        ]
    return enrollments


def _outbox_state(sent: SentStep, outbox: dict[str, tuple[str, str]]) -> tuple[str, str]:
    if sent.skipped:
        return "not sent", sent.skipped
    status, error = outbox.get(sent.outbox_key, ("missing", ""))
    label = dict(OutboxMessage.Status.choices).get(status, status)
    return str(label), error


def leads_moved(rph_ids: list[int]) -> int:
    """Leads given another time zone, country or contact: the next run works the send windows
    of their sequences out again. One UPDATE; returns how many windows it emptied."""
    return _forget_windows(Enrollment.objects.filter(rph_id__in=rph_ids))


def account_moved(account_id: int) -> int:
    """An account given another country: likewise for its contacts' leads."""
    return _forget_windows(Enrollment.objects.filter(rph__contact__account_id=account_id))


def _forget_windows(enrollments) -> int:
    active = enrollments.filter(status=Enrollment.Status.ACTIVE)
    return active.exclude(send_after=None, send_until=None).update(send_after=None, send_until=None)
