"""Telling people about overdue dispatches and tasks: one notification per job and recipient
on the dashboard, one grouped email per recipient through the outbox."""

from collections import defaultdict
from datetime import datetime

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from crm.models import User
from mailsync import outbox
from notifications.models import Notification, OverdueAlert
from notifications.objects import TYPES


def by_recipient(alerts: list[OverdueAlert], designated: list[int]) -> dict[int, list]:
    """Each alert goes to the job's owner, the owner's manager and the designated list."""
    recipients: dict[int, list[OverdueAlert]] = defaultdict(list)
    for alert in alerts:
        for user_id in dict.fromkeys([alert.owner_id, alert.owner.manager_id, *designated]):
            if user_id is not None:
                recipients[user_id].append(alert)
    return recipients


def _line(alert: OverdueAlert, as_of: datetime) -> str:
    hours = int((as_of - alert.due_at).total_seconds() // 3600)
    label = TYPES[alert.object_kind].label
    return f"{label} “{alert.title}” is {hours} h overdue (owner {alert.owner})"[:300]


def notify(recipients: dict[int, list[OverdueAlert]], as_of: datetime) -> int:
    """Notifications for everyone, emails for those with an address; how many emails were
    queued."""
    Notification.objects.bulk_create(
        [
            Notification(
                user_id=user_id,
                source="overdue",
                object_kind=alert.object_kind,
                object_id=alert.object_id,
                title=_line(alert, as_of),
                expires_at=alert.due_at,
                visible_from=as_of,
                created_at=as_of,
            )
            for user_id, alerts in recipients.items()
            for alert in alerts
        ],
        ignore_conflicts=True,
    )
    emails = dict(
        User.objects.filter(pk__in=recipients, is_active=True)
        .exclude(email="")
        .values_list("pk", "email")
    )
    stamp = timezone.localtime(as_of).strftime("%Y-%m-%d %H:%M")
    return outbox.queue(
        [
            outbox.Email(
                key=f"overdue:{as_of.isoformat()}:{user_id}",
                source="expired_jobs_alert",
                to=[emails[user_id]],
                subject=f"[Vigil] {len(alerts)} overdue job(s) at {stamp}",
                text_body="\n".join(
                    [f"These jobs are overdue as of {stamp}:", ""]
                    + [
                        f"- {_line(a, as_of)}\n  {_url(a)}"
                        for a in sorted(alerts, key=lambda a: a.due_at)
                    ]
                ),
            )
            for user_id, alerts in recipients.items()
            if user_id in emails
        ],
        as_of,
    )


def _url(alert: OverdueAlert) -> str:
    path = reverse(TYPES[alert.object_kind].url_names[0], args=[alert.object_id])
    return f"{settings.VIGIL_SITE_URL}{path}"
