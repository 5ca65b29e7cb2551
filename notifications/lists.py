"""The dashboard's lists in order of urgency, and the full lists behind its "N more" links.

Urgency: blocking first (soonest resolve-by first), then what is due today (soonest first),
then what is overdue (most recent first), then what is upcoming (soonest first).
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Case, F, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from crm.links import is_safe_link, record_url
from crm.models import Dispatch, Event, Opportunity, Task, User
from crm.visibility import mine, visible_to
from notifications.models import Notification
from notifications.objects import TYPES

BLOCKING, TODAY, OVERDUE, UPCOMING = range(4)
WHEN = {
    "due": Q(urgency__in=[TODAY, OVERDUE]),
    "today": Q(urgency=TODAY),
    "overdue": Q(urgency=OVERDUE),
    "upcoming": Q(urgency=UPCOMING),
    "coming": Q(urgency__in=[TODAY, UPCOMING]),
}
WHEN_CHOICES = [
    ("due", "Today and overdue"),
    ("today", "Today"),
    ("overdue", "Overdue (before today)"),
    ("coming", "Today and later"),
    ("upcoming", "After today"),
]


def today_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The start and end of the local calendar day that contains `now`."""
    today = timezone.localdate(now)
    start = timezone.make_aware(datetime.combine(today, time.min))
    return start, timezone.make_aware(datetime.combine(today + timedelta(days=1), time.min))


def by_urgency(queryset: QuerySet, field: str, now: datetime) -> QuerySet:
    """`queryset` annotated with its `urgency` bucket for the date `field`, in urgency order."""
    start: datetime | date
    end: datetime | date
    start, end = today_bounds(now)
    if queryset.model._meta.get_field(field).get_internal_type() == "DateField":
        start, end = start.date(), end.date()
    whens = [When(blocking=True, then=Value(BLOCKING))] if queryset.model is Notification else []
    whens += [
        When(**{f"{field}__lt": start}, then=Value(OVERDUE)),
        When(**{f"{field}__lt": end}, then=Value(TODAY)),
    ]
    queryset = queryset.annotate(
        urgency=Case(*whens, default=Value(UPCOMING), output_field=IntegerField())
    ).annotate(overdue_at=Case(When(urgency=OVERDUE, then=F(field)), default=None))
    first = [F("grace_deadline").asc(nulls_last=True)] if queryset.model is Notification else []
    return queryset.order_by("urgency", *first, F("overdue_at").desc(nulls_last=True), field, "pk")


def shown_notifications(user: User, now: datetime) -> QuerySet:
    """The user's open notifications that are still worth showing.

    A non-blocking notification stops being shown VIGIL_REMINDER_EXPIRY_DAYS after its date:
    a reminder about a close date three weeks gone must not sit above today's work. Blocking
    ones are shown until they are resolved, whatever their date.
    """
    stale_before = now - timedelta(days=settings.VIGIL_REMINDER_EXPIRY_DAYS)
    return Notification.objects.filter(
        Q(blocking=True) | Q(expires_at__gte=stale_before),
        user=user,
        status=Notification.Status.OPEN,
        visible_from__lte=now,
    )


def open_notifications(user: User, now: datetime) -> QuerySet:
    """The notifications shown to the user, most urgent first."""
    return by_urgency(shown_notifications(user, now), "expires_at", now)


@dataclass(frozen=True)
class FullList:
    """One of the dashboard's full lists: which records, which date orders them, which field
    says whether they are still open."""

    model: Any  # a model class
    heading: str
    name: str
    date: str
    url_name: str
    status: str = ""
    open_values: tuple = ()
    team_wide: bool = False  # the team's records (visible_to), not the user's own (mine)


LISTS = {
    "tasks": FullList(
        Task, "Tasks", "title", "due_at", "task_detail", "status", (Task.Status.OPEN,)
    ),
    "opportunities": FullList(
        Opportunity,
        "Opportunities",
        "name",
        "expected_close",
        "opportunity_detail",
        "stage",
        tuple(Opportunity.OPEN_STAGES),
    ),
    "events": FullList(Event, "Events", "title", "start_at", "event_detail"),
    "dispatches": FullList(
        Dispatch,
        "Dispatches",
        "title",
        "due_at",
        "dispatch_detail",
        "status",
        tuple(Dispatch.OPEN_STATUSES),
        team_wide=True,
    ),
}


def full_list(kind: str, user: User, now: datetime, params) -> QuerySet:
    """The records of `kind` that `user` sees on the dashboard (their own, a manager's team's;
    the team's dispatches), most urgent first, filtered by GET `params`: `when` (see WHEN),
    `status` (default: the open ones; "all"; or one value) and, for managers and
    administrators, `owner`."""
    spec = LISTS[kind]
    queryset = spec.model.objects.all()
    status = params.get("status") or "open"
    if spec.status and status == "open":
        queryset = queryset.filter(**{f"{spec.status}__in": spec.open_values})
    elif spec.status and status != "all":
        queryset = queryset.filter(**{spec.status: status})
    queryset = visible_to(user, queryset) if spec.team_wide else mine(user, queryset)
    queryset = by_urgency(queryset, spec.date, now)
    if params.get("when") in WHEN:
        queryset = queryset.filter(WHEN[params["when"]])
    owner = params.get("owner", "")
    if owner.isdigit() and user.role != User.Role.REP:
        queryset = queryset.filter(owner_id=int(owner))
    related = ["owner", "account"] + (["team"] if spec.team_wide else [])
    return queryset.select_related(*related)


def statuses(kind: str) -> list[tuple[str, str]]:
    """The `status` filter's choices for a list ([] when its records have no status)."""
    spec = LISTS[kind]
    if not spec.status:
        return []
    choices = spec.model._meta.get_field(spec.status).choices
    return [("open", "Open"), *choices, ("all", "All")]


def row(kind: str, record) -> dict:
    """What a full list shows of one record."""
    spec = LISTS[kind]
    return {
        "pk": record.pk,
        "name": getattr(record, spec.name),
        "url": record_url(spec.url_name, record.pk),
        # An open opportunity's stage changes right from the list.
        "stage_url": record_url("opportunity_update", record.pk) if kind == "opportunities" else "",
        "stage": getattr(record, "stage", ""),
        "account": record.account,
        "owner": record.owner,
        "date": getattr(record, spec.date),
        "overdue": record.overdue_at is not None,
        "status": getattr(record, f"get_{spec.status}_display")() if spec.status else "",
    }


def links(pk: int, object_kind: str, object_id: int, link: str) -> dict[str, str]:
    """Where a notification's row points: its own link, else its object (a notice has none:
    nowhere), snooze, dismiss. A link stored before links were checked that is not safe
    (crm.links) is never used."""
    if not (link and is_safe_link(link)):
        kind = TYPES.get(object_kind)
        link = record_url(kind.url_names[0], object_id) if kind else ""
    return {
        "url": link,
        "snooze_url": record_url("notifications:snooze", pk),
        "dismiss_url": record_url("notifications:dismiss", pk),
    }


def owners(user: User):
    """Whom a manager or administrator may filter a list by; nobody for a rep."""
    if user.role == User.Role.REP and not user.is_administrator:
        return User.objects.none()
    people = User.objects.all() if user.is_administrator else User.objects.filter(team=user.team_id)
    return people.order_by("first_name", "last_name", "username")
