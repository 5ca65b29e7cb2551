from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    CharField,
    DateTimeField,
    DurationField,
    Exists,
    OuterRef,
    Value,
)
from django.db.models.expressions import Combinable
from django.db.models.functions import Cast, Concat, Left

from crm import rollups
from crm.models import WorkingCalendar
from crm.registry import Counts, job
from crm.sql import insert_from_select
from notifications import changes, deadlines, digest, escalation, overdue_alerts  # noqa: F401 - digest registers its job
from notifications.models import AlertSettings, Notification, ObjectKind, OverdueAlert, ReminderRule
from notifications.objects import TYPES
from notifications.rules import matching
from notifications.services import close_done


@job("notifications_daily", schedule="0 6 * * *")
def notify_expiring(as_of: datetime, *, dry_run: bool = False) -> Counts:
    """Notify about tasks, opportunities, events and invoices about to expire or expired, and
    close what was said about objects done since. A range of ids of one kind at a time, each
    committed whole: every statement reads and writes a bounded part of each table (a
    statement over ten million rows outgrows memory). A re-run for the same moment reads only
    the ranges that changed since (notifications.changes)."""
    # The dashboard's rollups: the rows of the day before, folded first, so that a run that
    # fails further on still does it.
    rollups.compact(connection)
    rules = list(ReminderRule.objects.filter(active=True).order_by("pk"))
    sweep = changes.Sweep(as_of, rules)
    counts = {"rules": len(rules), "created": 0, "closed": 0, "ranges": 0}
    for kind in TYPES:
        kind_rules = [rule for rule in rules if rule.object_kind == kind]
        for spans in sweep.ranges(kind):
            with transaction.atomic(), changes.quiet():
                for lo, hi in spans:  # a statement each: a range is an index range
                    # Closing first: what the rules add is about open objects.
                    counts["closed"] += close_done(as_of, kind, lo, hi)
                    for rule in kind_rules:
                        counts["created"] += notify_for_rule(rule, as_of, lo, hi)
            counts["ranges"] += len(spans)
    sweep.finish()
    company = WorkingCalendar.current()
    if company.enabled:  # the new deadlines, in working time (blocking_deadlines: the rest)
        new = Notification.objects.filter(created_at=as_of)
        counts["deadlines"] = deadlines.reschedule(new, as_of, company)
    return counts


@job("blocking_deadlines", schedule="30 5 * * *")
def rework_deadlines(as_of: datetime, *, dry_run: bool = False) -> Counts:
    """Work every open blocking deadline out again (in working time when the company counts
    it, else on the wall clock): nightly, and after a change to everyone's calendar."""
    return {"changed": deadlines.reschedule(Notification.objects.all(), as_of)}


def notify_for_rule(rule: ReminderRule, as_of: datetime, lo: int, hi: int) -> int:
    """One INSERT … SELECT per kind of recipient the rule names, of the episodes not yet
    notified, of the objects with lo <= id <= hi."""
    object_type = TYPES[rule.object_kind]
    objects, expires_at = matching(rule, as_of)
    objects = objects.filter(pk__range=(lo, hi)).alias(episode_expires_at=expires_at)
    source = f"rule:{rule.pk}"
    # On the wall clock; in working time once the run is done (deadlines.reschedule).
    deadline = as_of + rule.grace_period if rule.blocking else None
    share = rule.grace_period * rule.manager_copy_at / 100 if rule.manager_copy_at else None
    columns: dict[str, Combinable | str] = {
        "source": Value(source),
        "rule": Value(rule.pk),
        "object_kind": Value(rule.object_kind),
        "object_id": "pk",
        "title": Left(
            Concat(Value(f"{rule.name}: "), object_type.name, output_field=CharField()), 300
        ),
        "note": Value(""),
        "expires_at": "episode_expires_at",
        "visible_from": Value(as_of, output_field=DateTimeField()),
        "status": Value(Notification.Status.OPEN),
        "created_at": Value(as_of, output_field=DateTimeField()),
    }
    recipients = [
        path
        for path, wanted in (
            (object_type.owner, rule.notify_owner),
            (object_type.manager, rule.notify_manager),
            (object_type.account_manager, rule.notify_account_manager),
        )
        if wanted
    ]
    created = 0
    for path in dict.fromkeys(recipients):
        # Only the owner is blocked; managers and account managers get a plain copy.
        blocks = rule.blocking and path == object_type.owner
        # Known episodes are skipped up front, an anti-join on the unique constraint's index:
        # far cheaper than letting ON CONFLICT build and reject each row, so a same-day re-run
        # finds out quickly that it has nothing to do. ON CONFLICT stays for concurrent runs.
        known = Notification.objects.filter(
            source=source,
            object_kind=rule.object_kind,
            object_id__range=(lo, hi),  # the index range of this range's episodes alone
            object_id=OuterRef("pk"),
            user_id=OuterRef(path),
            expires_at=OuterRef("episode_expires_at"),
        )
        created += insert_from_select(
            Notification,
            {
                "user": path,
                "blocking": Value(blocks, output_field=BooleanField()),
                "grace_deadline": _moment(deadline if blocks else None),
                "grace_from": _moment(as_of if blocks else None),
                "grace": _duration(rule.grace_period if blocks else None),
                "escalate_at": _moment(as_of + share if blocks and share else None),
                **columns,
            },
            objects.filter(**{f"{path}__isnull": False}).exclude(Exists(known)),
        )
    return created


def _moment(at: datetime | None) -> Value | Cast:
    # NULL needs its type named on PostgreSQL; an instant must not be cast, or SQLite writes
    # it in another text form than the one it is later compared with (deadlines.reschedule).
    if at is None:
        return Cast(Value(None, output_field=DateTimeField()), DateTimeField())
    return Value(at, output_field=DateTimeField())


def _duration(length: timedelta | None) -> Value | Cast:
    if length is None:
        return Cast(Value(None, output_field=DurationField()), DurationField())
    return Value(length, output_field=DurationField())


@job("expired_jobs_alert", schedule="*/30 * * * *", final_effects="emails alerts")
def alert_overdue_jobs(as_of: datetime, *, dry_run: bool = False) -> Counts:
    """Alert owners, their managers and the designated list about dispatches and tasks that
    are past their due time by the configured threshold (3 h): once per overdue episode."""
    # One unit of work: the episodes recorded as alerted, their notifications and their
    # emails commit together, so a failure in between can never mark an episode alerted
    # that nobody was told about.
    with transaction.atomic():
        return _alert_overdue_jobs(as_of)


def _alert_overdue_jobs(as_of: datetime) -> Counts:
    settings = AlertSettings.current()
    company = WorkingCalendar.current()
    # Skipping known episodes up front is cheaper than letting ON CONFLICT find them.
    already_alerted = OverdueAlert.objects.filter(
        object_id=OuterRef("pk"), due_at=OuterRef("due_at")
    )
    new = 0
    for kind in (ObjectKind.DISPATCH, ObjectKind.TASK):
        object_type = TYPES[kind]
        candidates = object_type.open(as_of).exclude(
            Exists(already_alerted.filter(object_kind=kind))
        )
        if company.enabled and settings.working_time:
            crossed = overdue_alerts.crossed_in_working_time(
                candidates, object_type.owner, as_of, settings, company
            )
        else:
            crossed_by = as_of - settings.threshold
            crossed = candidates.filter(
                due_at__lte=crossed_by, due_at__gt=crossed_by - settings.lookback
            )
        new += insert_from_select(
            OverdueAlert,
            {
                "object_kind": Value(kind),
                "object_id": "pk",
                "due_at": "due_at",
                "owner": object_type.owner,
                "title": object_type.name,
                "alerted_at": Value(as_of, output_field=DateTimeField()),
            },
            crossed,
        )
    alerts = list(OverdueAlert.objects.filter(alerted_at=as_of).select_related("owner"))
    designated = list(settings.recipients.values_list("pk", flat=True))
    by_recipient = overdue_alerts.by_recipient(alerts, designated)
    held = company.enabled and settings.hold_off_duty
    release = overdue_alerts.release_times(by_recipient, as_of, company) if held else {}
    emails = overdue_alerts.notify(by_recipient, as_of, release)
    counts = {"overdue": new, "recipients": len(by_recipient), "emails": emails}
    if held:
        counts["held"] = sum(1 for at in release.values() if at > as_of)
    return counts


@job("blocking_escalation", schedule="*/15 * * * *", final_effects="emails users")
def escalate_blocking(as_of: datetime, *, dry_run: bool = False) -> Counts:
    """The levels before a block, as each rule sets them: a reminder email when the item's
    date arrives, then a copy to the user's manager at a share of the grace period. Each is
    recorded in the audit trail; the block itself is the gate's (notifications.middleware)."""
    with transaction.atomic():  # the marks, the audit rows and the emails commit together
        reminded = escalation.remind_due(as_of)
        copied = escalation.copy_to_managers(as_of)
    return {"reminded": reminded, "copied": copied}
