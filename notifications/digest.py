"""The morning digest: an opt-in email of the user's day, sent once at the start of each of
their working days.

A user's working day is their calendar's (crm.workingtime: their days and hours, else their
team's, else the company's, in their time zone, less holidays and absences), whether or not
WorkingCalendar.enabled counts deadlines in working time: the digest is something the user
asked for, about their own day. It goes at the first run after the day's hours start (a late
run still sends it, until the hours end; a night shift's day is the day it starts on), and
never on a day off.

What it holds, in the dashboard's order of urgency (notifications.lists): the user's open
blocking notifications, then their notifications and open tasks due today, then those
overdue. A day with none of them sends nothing, and counts as done.

Runs are few and users are hundreds, so the job walks the opted-in users in Python, but reads
the digests' contents for a whole batch of users in five queries, whatever their number.
"""

import functools
import operator
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Count, DateField, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.db.models.expressions import OrderBy, Window
from django.db.models.functions import RowNumber
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone

from crm.links import record_url
from crm.models import Task, User
from crm.registry import Counts, job
from crm.workingtime import Calendar, calendars_for
from mailsync import outbox
from notifications import lists
from notifications.models import Notification, ObjectKind
from notifications.objects import still_open

SHOWN = 10  # items a section lists; the rest are "N more" on the dashboard
BATCH = 100  # users claimed and emailed in one transaction
OPEN = Notification.Status.OPEN


@dataclass(frozen=True)
class Day:
    """A user's working day that has started: the local day it is for, and the instants
    between which something is due "today"."""

    user: User
    zone: ZoneInfo
    day: date
    start: datetime  # the local midnight that begins `day`
    end: datetime  # the next midnight, or the end of a night shift that runs past it


@dataclass
class Section:
    key: str
    heading: str
    short: str  # in the subject: "2 due today"
    moment: str  # what an item's time says: "resolve by", "due"
    format: str  # how it is shown (Django's date format)
    items: list[dict] = field(default_factory=list)
    total: int = 0

    @property
    def more(self) -> int:
        return self.total - len(self.items)


@job("morning_digest", schedule="*/15 * * * *", final_effects="emails users their day")
def send_morning_digests(as_of: datetime, *, dry_run: bool = False) -> Counts:
    """Email each opted-in user a digest of their day at the start of their working day, once."""
    users = list(
        User.objects.filter(morning_digest=True, is_active=True)
        .exclude(email="")
        .select_related("team")
    )
    calendars = calendars_for(users, as_of)
    started = [d for u in users if (d := working_day(u, calendars[u.pk], as_of)) is not None]
    due = [d for d in started if _not_sent(d.user.last_digest_on, d.day)]
    counts = {
        "opted_in": len(users),
        "off_duty": len(users) - len(started),
        "already_sent": len(started) - len(due),
        "sent": 0,
        "empty": 0,
        "taken": 0,  # by a concurrent run, or sent by one since this run read the users
    }
    for first in range(0, len(due), BATCH):
        for name, value in _send(due[first : first + BATCH], as_of, dry_run).items():
            counts[name] += value
    return counts


def working_day(user: User, calendar: Calendar, at: datetime) -> Day | None:
    """The user's working day whose hours run at `at` (a night shift's is the day it started
    on), or None when they are off duty."""
    local = at.astimezone(calendar.zone).date()
    for day in (local, local - timedelta(days=1)):
        shift = calendar.shift(day)
        if shift is not None and shift[0] <= at < shift[1]:
            midnight = calendar.instant(day + timedelta(days=1), time(0))
            start = calendar.instant(day, time(0))
            return Day(user, calendar.zone, day, start, max(midnight, shift[1]))
    return None


def _not_sent(last: date | None, day: date) -> bool:
    # Later than the last one, not just another: a run for an earlier as_of (by hand, or one
    # that waited) never sends a day that is over.
    return last is None or last < day


def _send(days: list[Day], as_of: datetime, dry_run: bool) -> Counts:
    if dry_run:
        emails = _emails(days, as_of)
        return {"sent": len(emails), "empty": len(days) - len(emails)}
    # One unit of work: the users marked as having had the day's digest and the emails in the
    # outbox commit together. The users' rows stay locked until then, so a concurrent run
    # skips them, and one that starts after the commit finds them marked.
    with transaction.atomic():
        claimed = _claim(days)
        emails = _emails(claimed, as_of)
        sent = outbox.queue(emails, as_of) if emails else 0
        _mark_sent(claimed)
    return {"sent": sent, "empty": len(claimed) - len(emails), "taken": len(days) - len(claimed)}


def _claim(days: list[Day]) -> list[Day]:
    """Those of `days` whose user this run takes: rows another run holds are skipped, not
    waited for, and each row is read again once locked, so a digest sent meanwhile, or a
    choice switched off, counts. (NO KEY: a notification written meanwhile neither waits for
    the lock nor makes the user skipped. A task, event or lead written for the user holds
    their row FOR SHARE until it commits, to copy their team (crm/triggers.py): a user with
    one being written is skipped, and taken at the next run.)"""
    wanted = {d.user.pk: d for d in days}
    locked = dict(
        User.objects.select_for_update(skip_locked=True, no_key=True)
        .filter(pk__in=wanted, morning_digest=True, is_active=True)
        .values_list("pk", "last_digest_on")
    )
    return [d for pk, d in wanted.items() if pk in locked and _not_sent(locked[pk], d.day)]


def _mark_sent(days: list[Day]) -> None:
    """One UPDATE: each user's last_digest_on becomes the day their digest was for (an empty
    day too: it was looked at, and an item added at noon is no morning digest)."""
    if not days:
        return
    by_day: dict[date, list[int]] = defaultdict(list)
    for d in days:
        by_day[d.day].append(d.user.pk)
    User.objects.filter(pk__in=[d.user.pk for d in days]).update(
        last_digest_on=Case(
            *(When(pk__in=ids, then=Value(day)) for day, ids in by_day.items()),
            output_field=DateField(),
        )
    )


# --- What a digest holds -------------------------------------------------------------------------


def _sections() -> dict[str, Section]:
    return {
        "blocking": Section("blocking", "Blocking: deal with these first", "blocking",
                            "resolve by", "D j M H:i"),
        "today": Section("today", "Due today", "due today", "due", "H:i"),
        "overdue": Section("overdue", "Overdue", "overdue", "due", "D j M H:i"),
    }  # fmt: skip


def contents(days: list[Day], as_of: datetime) -> dict[int, list[Section]]:
    """Each user's sections, in order: five queries for all of `days`' users."""
    if not days:
        return {}
    by_user = {d.user.pk: _sections() for d in days}
    stale_before = as_of - timedelta(days=settings.VIGIL_REMINDER_EXPIRY_DAYS)
    notifications = Notification.objects.filter(
        user__in=list(by_user), status=OPEN, visible_from__lte=as_of
    )
    reminders = notifications.filter(blocking=False)
    tasks = Task.objects.filter(owner__in=list(by_user), status=Task.Status.OPEN).exclude(
        Exists(_noted_tasks(as_of, stale_before, max(d.end for d in days)))
    )
    parts = [
        # A blocking notification is listed while its object needs attention, whatever its
        # date (as services.open_blocking, for many users at once).
        ("blocking", _notices(notifications.filter(blocking=True).filter(still_open(as_of)),
                              F("grace_deadline").asc(), F("expires_at").asc())),
        ("today", _notices(reminders.filter(_today("expires_at", "user", days)),
                           F("expires_at").asc())),
        ("overdue", _notices(reminders.filter(_before_today("expires_at", "user", days),
                                              expires_at__gte=stale_before),
                             F("expires_at").desc())),
        ("today", _tasks(tasks.filter(_today("due_at", "owner", days)), F("due_at").asc())),
        ("overdue", _tasks(tasks.filter(_before_today("due_at", "owner", days)),
                           F("due_at").desc())),
    ]  # fmt: skip
    for key, rows in parts:
        for row in rows:
            section = by_user[row["user"]][key]
            section.items.append(row)
            section.total += row["total"] if row["place"] == 1 else 0  # one total a part
    for sections in by_user.values():
        for section in sections.values():
            rows = _in_order(section.items, section.key)[:SHOWN]
            section.items = [_item(row, section.key) for row in rows]
    return {pk: list(sections.values()) for pk, sections in by_user.items()}


NOTICE_FIELDS = [
    "user_id",
    "title",
    "grace_deadline",
    "expires_at",
    "link",
    "object_kind",
    "object_id",
]


def _notices(queryset: QuerySet, *order: OrderBy) -> list[dict]:
    return [
        {
            **row,
            "user": row["user_id"],
            "deadline": row["grace_deadline"],
            "date": row["expires_at"],
            "url": lists.links(row["pk"], row["object_kind"], row["object_id"], row["link"])["url"],
        }
        for row in _first(queryset, "user_id", NOTICE_FIELDS, *order)
    ]


def _tasks(queryset: QuerySet, *order: OrderBy) -> list[dict]:
    return [
        {
            **row,
            "user": row["owner_id"],
            "deadline": None,
            "date": row["due_at"],
            "url": record_url("task_detail", row["pk"]),
        }
        for row in _first(queryset, "owner_id", ["owner_id", "title", "due_at"], *order)
    ]


def _first(queryset: QuerySet, owner: str, fields: list[str], *order: OrderBy) -> list[dict]:
    """Each user's first SHOWN rows of `queryset` in `order`, each with the user's total: one
    query, and a backlog of thousands stays in the database."""
    partition = [F(owner)]
    ranked = queryset.annotate(
        place=Window(RowNumber(), partition_by=partition, order_by=[*order, F("pk").asc()]),
        total=Window(Count("*"), partition_by=partition),
    )
    return list(ranked.filter(place__lte=SHOWN).values("pk", "place", "total", *fields))


def _windows(days: list[Day]) -> dict[tuple[datetime, datetime], list[int]]:
    """The users of `days` grouped by their "today": a few groups (one a zone, mostly)."""
    groups: dict[tuple[datetime, datetime], list[int]] = defaultdict(list)
    for d in days:
        groups[d.start, d.end].append(d.user.pk)
    return groups


def _any(conditions: Iterable[Q]) -> Q:
    return functools.reduce(operator.or_, conditions)


def _today(moment: str, user: str, days: list[Day]) -> Q:
    return _any(
        Q(**{f"{user}__in": ids, f"{moment}__gte": start, f"{moment}__lt": end})
        for (start, end), ids in _windows(days).items()
    )


def _before_today(moment: str, user: str, days: list[Day]) -> Q:
    return _any(
        Q(**{f"{user}__in": ids, f"{moment}__lt": start})
        for (start, _), ids in _windows(days).items()
    )


def _noted_tasks(as_of: datetime, stale_before: datetime, latest_end: datetime) -> QuerySet:
    """A task its owner has an open notification about that the digest lists: the
    notification ("Task overdue: Call Acme") stands for the task, which is not listed twice."""
    return Notification.objects.filter(
        Q(blocking=True) | Q(expires_at__gte=stale_before, expires_at__lt=latest_end),
        user=OuterRef("owner_id"),
        object_kind=ObjectKind.TASK,
        object_id=OuterRef("pk"),
        status=OPEN,
        visible_from__lte=as_of,
    )


def _in_order(rows: list[dict], key: str) -> list[dict]:
    """Most urgent first (notifications.lists): blocking by resolve-by date, today's soonest
    first, overdue most recent first."""
    if key == "blocking":
        return sorted(rows, key=lambda r: (r["deadline"], r["date"], r["pk"]))
    return sorted(rows, key=lambda r: (r["date"], r["pk"]), reverse=key == "overdue")


def _item(row: dict, key: str) -> dict:
    url = row["url"]
    return {
        "title": row["title"],
        # A path on this site as the address an email links to; an http(s) link as it is.
        "url": f"{settings.VIGIL_SITE_URL}{url}" if url.startswith("/") else url,
        "at": row["deadline"] if key == "blocking" else row["date"],
    }


# --- The email ---------------------------------------------------------------------------------


def _emails(days: list[Day], as_of: datetime) -> list[outbox.Email]:
    """The digest of each of `days` that has something in it."""
    by_user = contents(days, as_of)
    return [_email(d, by_user[d.user.pk]) for d in days if any(s.total for s in by_user[d.user.pk])]


def _email(day: Day, sections: list[Section]) -> outbox.Email:
    site = settings.VIGIL_SITE_URL
    sections = [s for s in sections if s.total]
    context = {
        "name": day.user.get_short_name() or day.user.username,
        "day": day.day,
        "sections": sections,
        "dashboard_url": f"{site}{reverse('dashboard')}",
        "settings_url": f"{site}{reverse('preferences')}",
    }
    with timezone.override(day.zone):  # times in the user's zone
        text = render_to_string("notifications/digest_email.txt", context)
        html = render_to_string("notifications/digest_email.html", context)
    summary = ", ".join(f"{s.total} {s.short}" for s in sections)
    return outbox.Email(
        key=f"digest:{day.user.pk}:{day.day.isoformat()}",
        source="morning_digest",
        to=[day.user.email],
        subject=f"[Vigil] Your day, {formats.date_format(day.day, 'D j M')}: {summary}",
        text_body=text,
        html_body=html,
    )
