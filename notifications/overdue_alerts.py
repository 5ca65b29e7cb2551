"""Telling people about overdue dispatches and tasks: one notification per job and recipient
on the dashboard, one grouped email per recipient through the outbox."""

from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from crm.models import Dispatch, Team, User
from crm.workingtime import HORIZON_DAYS, NoWorkingTime, calendars_for, team_calendars
from mailsync import outbox
from notifications.models import AlertSettings, Notification, ObjectKind, OverdueAlert
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


def crossed_in_working_time(
    candidates: QuerySet, owner: str, as_of: datetime, settings: AlertSettings, company
) -> QuerySet:
    """The candidates whose owner has worked `settings.threshold` since they fell due (within
    the lookback before that instant): per owner, one cut-off instant from their calendar. A
    job crosses the threshold in working time no sooner than on the wall clock, so only jobs
    past the wall-clock threshold are candidates."""
    wall = candidates.filter(due_at__lte=as_of - settings.threshold)
    owners = User.objects.filter(pk__in=wall.values(owner)).select_related("team")
    calendars = calendars_for(owners, as_of - timedelta(days=HORIZON_DAYS), company)
    crossed = Q(pk__in=[])
    for owner_id, calendar in calendars.items():
        # Crossed by now, and not already by the start of the lookback: a night or a weekend
        # the threshold cannot cross leaves no job out, however long it is.
        try:
            cut_off = calendar.back(as_of, settings.threshold)
            earliest = calendar.back(as_of - settings.lookback, settings.threshold)
        except NoWorkingTime:
            cut_off = as_of - settings.threshold
            earliest = cut_off - settings.lookback
        crossed |= Q(**{owner: owner_id, "due_at__lte": cut_off, "due_at__gt": earliest})
    return wall.filter(crossed)


def release_times(
    recipients: dict[int, list[OverdueAlert]], as_of: datetime, company
) -> dict[tuple[int, int], datetime]:
    """When each recipient gets each alert: at once if they are working, or chose alerts at
    once; else at their next working instant, or for a dispatch of a team with shifts of its
    own, at that team's next shift. Five queries whatever the number of alerts."""
    people = list(User.objects.filter(pk__in=recipients).select_related("team"))
    calendars = calendars_for(people, as_of, company)
    dispatches = [
        a.object_id
        for alerts in recipients.values()
        for a in alerts
        if a.object_kind == ObjectKind.DISPATCH
    ]
    team_of = dict(Dispatch.objects.filter(pk__in=dispatches).values_list("pk", "team_id"))
    shifts = team_calendars(Team.objects.filter(pk__in=set(team_of.values())), as_of, company)
    at_once = {person.pk for person in people if person.alerts_at_once}
    release = {}
    for user_id, alerts in recipients.items():
        for alert in alerts:
            team = (
                team_of.get(alert.object_id) if alert.object_kind == ObjectKind.DISPATCH else None
            )
            calendar = shifts.get(team) if team else calendars.get(user_id)
            calendar = calendar or calendars.get(user_id)
            if user_id in at_once or calendar is None:
                release[user_id, alert.pk] = as_of
                continue
            try:
                release[user_id, alert.pk] = calendar.next_working_instant(as_of)
            except NoWorkingTime:
                release[user_id, alert.pk] = as_of
    return release


def notify(
    recipients: dict[int, list[OverdueAlert]],
    as_of: datetime,
    release: dict[tuple[int, int], datetime] | None = None,
) -> int:
    """Notifications for everyone, emails for those with an address, each when `release` says
    (at once by default); how many emails were queued."""
    release = release or {}

    def when(user_id: int, alert: OverdueAlert) -> datetime:
        return release.get((user_id, alert.pk), as_of)

    Notification.objects.bulk_create(
        [
            Notification(
                user_id=user_id,
                source="overdue",
                object_kind=alert.object_kind,
                object_id=alert.object_id,
                title=_line(alert, as_of),
                expires_at=alert.due_at,
                visible_from=when(user_id, alert),
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
    # One email per recipient and release time (one, unless a dispatch team's shift differs).
    batches: dict[tuple[int, datetime], list[OverdueAlert]] = defaultdict(list)
    for user_id, alerts in recipients.items():
        for alert in alerts:
            batches[user_id, when(user_id, alert)].append(alert)
    stamp = timezone.localtime(as_of).strftime("%Y-%m-%d %H:%M")
    return outbox.queue(
        [
            outbox.Email(
                key=f"overdue:{as_of.isoformat()}:{user_id}"
                + ("" if send_at == as_of else f":{send_at.isoformat()}"),
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
                send_at=send_at,
            )
            for (user_id, send_at), alerts in batches.items()
            if user_id in emails
        ],
        as_of,
    )


def _url(alert: OverdueAlert) -> str:
    path = reverse(TYPES[alert.object_kind].url_names[0], args=[alert.object_id])
    return f"{settings.VIGIL_SITE_URL}{path}"
