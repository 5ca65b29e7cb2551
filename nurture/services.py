"""Writes and reads about a lead's nurture sequence that other apps and pages call."""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from crm.models import RPH
from mailsync.models import OutboxMessage
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
