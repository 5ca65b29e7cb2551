"""Escalation before a block, level by level (notifications.jobs.escalate_blocking):

1. when the object's date arrives and the item is still open, a reminder email to the user
   (ReminderRule.remind_when_due);
2. at the rule's share of the grace period (ReminderRule.manager_copy_at, counted like the
   deadline: in working time when the company counts it), a copy on the manager's dashboard;
3. at the deadline, the block (the gate, notifications.middleware).

Each level is marked on the notification (reminded_at, escalated_at) in the transaction that
does it, so it happens once, and recorded in the audit trail."""

from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import CharField, DateTimeField, F, Q, Value
from django.db.models.functions import Concat, Left
from django.urls import reverse

from crm.models import User, time_zones
from crm.sql import insert_from_select
from mailsync import outbox
from notifications.models import AuditEvent, Notification
from notifications.objects import TYPES, still_open

OPEN = Notification.Status.OPEN
# A rule switched on later does not remind about items that fell due long ago (or were raised
# long ago: one raised a day after its date, lead time 0, is reminded too).
REMIND_WITHIN = timedelta(days=2)


def _waiting(as_of: datetime):
    return Notification.objects.filter(status=OPEN, blocking=True, visible_from__lte=as_of).filter(
        still_open(as_of)
    )


def _claim(queryset) -> list[int]:
    return list(
        queryset.select_for_update(skip_locked=True, of=("self",)).values_list("pk", flat=True)
    )


def remind_due(as_of: datetime) -> int:
    """Level 1: one email per user listing their blocking items that fell due."""
    ids = _claim(
        _waiting(as_of).filter(
            Q(expires_at__gt=as_of - REMIND_WITHIN) | Q(created_at__gt=as_of - REMIND_WITHIN),
            reminded_at=None,
            rule__remind_when_due=True,
            expires_at__lte=as_of,
        )
    )
    if not ids:
        return 0
    due = Notification.objects.filter(pk__in=ids)
    by_user = defaultdict(list)
    for notification in due.order_by("grace_deadline", "pk"):
        by_user[notification.user_id].append(notification)
    people = {
        user.pk: user
        for user in User.objects.filter(pk__in=by_user, is_active=True).exclude(email="")
    }
    # Marked either way (once is once); the audit says whether an email went.
    emailed = due.filter(user__in=list(people))
    _audit(emailed, AuditEvent.Action.REMINDED, "due now: reminder emailed", as_of)
    _audit(
        due.exclude(user__in=list(people)),
        AuditEvent.Action.REMINDED,
        "due now: no address to email",
        as_of,
    )
    outbox.queue(
        [
            outbox.Email(
                key=f"blocking-due:{as_of.isoformat()}:{user_id}",
                source="blocking_escalation",
                to=[people[user_id].email],
                subject=f"[Vigil] Due now: {len(items)} blocking item(s)",
                text_body=_reminder(people[user_id], items),
            )
            for user_id, items in by_user.items()
            if user_id in people
        ],
        as_of,
    )
    return due.update(reminded_at=as_of)


def copy_to_managers(as_of: datetime) -> int:
    """Level 2: the item on the manager's dashboard, once."""
    ids = _claim(_waiting(as_of).filter(escalated_at=None, escalate_at__lte=as_of))
    if not ids:
        return 0
    due = Notification.objects.filter(pk__in=ids)
    copied = insert_from_select(
        Notification,
        {
            "user": "user__manager",
            "source": Value("escalation"),
            "rule": "rule",
            "object_kind": "object_kind",
            "object_id": "object_id",
            "title": Left(
                Concat(
                    Value("Escalated ("),
                    F("user__username"),
                    Value("): "),
                    F("title"),
                    output_field=CharField(),
                ),
                300,
            ),
            "note": Value(""),
            "expires_at": "expires_at",
            "blocking": Value(False),
            "visible_from": Value(as_of, output_field=DateTimeField()),
            "status": Value(OPEN),
            "created_at": Value(as_of, output_field=DateTimeField()),
        },
        due.filter(user__manager__isnull=False),
    )
    _audit(
        due.filter(user__manager__isnull=False),
        AuditEvent.Action.ESCALATED,
        "copied to the manager",
        as_of,
    )
    due.update(escalated_at=as_of)
    return copied


def _reminder(user: User, items: list[Notification]) -> str:
    zone = ZoneInfo(user.time_zone if user.time_zone in time_zones() else settings.TIME_ZONE)
    lines = [
        "These are due now. Deal with each before its deadline, or you will be signed out "
        "until your manager unlocks you.",
        "",
    ]
    for n in items:
        deadline = n.grace_deadline.astimezone(zone)  # type: ignore[union-attr] # blocking
        lines.append(f"- {n.title} (resolve by {deadline:%a %d %b %H:%M} {zone.key})")
        lines.append(f"  {_url(n)}")
    return "\n".join(lines)


def _audit(notifications, action: str, detail: str, at: datetime) -> int:
    return insert_from_select(
        AuditEvent,
        {
            "user": "user_id",
            "action": Value(action),
            "notification": "pk",
            "at": Value(at, output_field=DateTimeField()),
            "detail": Value(detail),
        },
        notifications,
    )


def _url(notification: Notification) -> str:
    path = reverse(TYPES[notification.object_kind].url_names[0], args=[notification.object_id])
    return f"{settings.VIGIL_SITE_URL}{path}"
