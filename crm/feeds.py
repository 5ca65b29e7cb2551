"""A rep's day outside the browser: a private iCalendar feed (RFC 5545, every value encoded by
the icalendar library) that Google Calendar, Outlook and Thunderbird subscribe to.

The address is /feeds/calendar.ics?key=<secret>, made on Settings (/me/), shown once and
replaced or revoked there (or by an administrator: Admin → Calendar feeds); only a SHA-256 hash
of the key is kept (CalendarFeed). The key rides in the query string, which Django's log of a
refused request leaves out; `runserver`'s request lines and Sentry's events mask it
(crm/settings.py, monitoring.scrubbing.safe_query). The feed holds the owner's own items,
from 30 days back to 180 ahead, at most PER_KIND of each, the coming ones first:

- events: an event from its start to its end;
- visits (dispatches assigned to the owner): from their scheduled time to their due time;
- open tasks: half an hour at the due time, with a reminder 15 minutes before (a VEVENT with a
  VALARM: Google Calendar shows no VTODO from a subscription);
- open blocking notifications: their grace deadline, with a reminder an hour before.
Items already past carry no reminder: a new subscriber is not shown a pile of missed ones."""

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta

import icalendar
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Case, F, Q, Value, When
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from crm.links import record_url
from crm.models import CalendarFeed, Dispatch, Event, Task, User
from crm.preferences import settings_page
from notifications.models import Notification

PAST, AHEAD = timedelta(days=30), timedelta(days=180)
PER_KIND = 500
KEY_LENGTH = 43  # secrets.token_urlsafe(32)
TASK_LENGTH = timedelta(minutes=30)
TASK_ALARM = "TRIGGER:" + icalendar.vDuration(-timedelta(minutes=15)).to_ical().decode()
DEADLINE_ALARM = "TRIGGER:" + icalendar.vDuration(-timedelta(hours=1)).to_ical().decode()
# Calendar clients poll every few minutes: when it was last read is written once an hour.
LAST_READ_EVERY = timedelta(hours=1)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_feed(user: User) -> str:
    """A new secret address for `user`, replacing any earlier one. Returns the key."""
    key = secrets.token_urlsafe(32)
    CalendarFeed.objects.update_or_create(
        user=user, defaults={"key_hash": key_hash(key), "created_at": timezone.now()}
    )
    return key


def feed_url(key: str) -> str:
    return f"{settings.VIGIL_SITE_URL}{reverse('calendar_feed')}?key={key}"


@require_safe  # GET, and HEAD, which some subscribing clients send first
def calendar_feed(request):
    key = request.GET.get("key", "")
    if len(key) != KEY_LENGTH:
        raise Http404("No such feed.")
    feed = (
        CalendarFeed.objects.filter(key_hash=key_hash(key), user__is_active=True)
        .select_related("user")
        .first()
    )
    if feed is None:
        raise Http404("No such feed.")
    now = timezone.now()
    if feed.last_read_at is None or feed.last_read_at < now - LAST_READ_EVERY:
        CalendarFeed.objects.filter(pk=feed.pk).update(last_read_at=now)
    response = HttpResponse(feed_text(feed.user, now), content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=60"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    return response


def feed_text(user: User, now: datetime) -> bytes:
    """The feed's text: four queries, one a kind (with the feed's own: five a read, six when
    its last read is written). Every value is written by the icalendar
    library's encoders (text escapes, durations); the lines around them are put together
    here and folded by fold(): the library's components cost 200–300 ms at a thousand
    items, most of it folding each line character by character."""
    since, until = now - PAST, now + AHEAD
    stamp = _utc(now)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Vigil//CRM calendar feed//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:" + _text(f"Vigil: {user}"),
    ]
    events = Event.objects.filter(owner=user, end_at__gte=since, start_at__lte=until)
    for pk, title, start, end in events.order_by(
        *_coming_first("end_at", now), "start_at", "pk"
    ).values_list("pk", "title", "start_at", "end_at")[:PER_KIND]:
        lines += _item("event", pk, stamp, title, start, end, "event_detail")
    visits = Dispatch.objects.filter(
        owner=user, due_at__gte=since, scheduled_at__lte=until, status__in=Dispatch.OPEN_STATUSES
    )
    for pk, title, start, end in visits.order_by(
        *_coming_first("due_at", now), "scheduled_at", "pk"
    ).values_list("pk", "title", "scheduled_at", "due_at")[:PER_KIND]:
        lines += _item("visit", pk, stamp, title, start, end, "dispatch_detail")
    tasks = Task.objects.filter(
        owner=user, status=Task.Status.OPEN, due_at__gte=since, due_at__lte=until
    )
    for pk, title, due in tasks.order_by(*_coming_first("due_at", now), "due_at", "pk").values_list(
        "pk", "title", "due_at"
    )[:PER_KIND]:
        alarm = TASK_ALARM if due > now else None
        lines += _item("task", pk, stamp, f"Due: {title}", due, None, "task_detail", alarm)
    deadlines = Notification.objects.filter(
        user=user,
        status=Notification.Status.OPEN,
        blocking=True,
        grace_deadline__gte=since,
        grace_deadline__lte=until,
    )
    for pk, title, deadline in deadlines.order_by(
        *_coming_first("grace_deadline", now), "grace_deadline", "pk"
    ).values_list("pk", "title", "grace_deadline")[:PER_KIND]:
        alarm = DEADLINE_ALARM if deadline > now else None
        title = f"Blocking deadline: {title}"
        lines += _item("deadline", pk, stamp, title, deadline, None, None, alarm)
    lines.append("END:VCALENDAR")
    return b"\r\n".join(fold(line) for line in lines) + b"\r\n"


def _coming_first(field: str, now: datetime) -> tuple:
    """The coming items soonest first, then the past ones latest first: the cap keeps what
    is ahead and what has just gone by, not the oldest."""
    coming = Q(**{f"{field}__gte": now})
    return (
        Case(When(coming, then=Value(0)), default=Value(1)),
        Case(When(coming, then=F(field))),
        F(field).desc(),
    )


def _item(kind, pk, stamp, title, start, end, page, alarm=None) -> list[str]:
    """One VEVENT, with a VALARM `alarm` before it starts if given."""
    end = end if end is not None and end > start else start + TASK_LENGTH
    item = [
        "BEGIN:VEVENT",
        "UID:" + _text(f"{kind}-{pk}@{settings.VIGIL_MAIL_DOMAIN}"),
        f"DTSTAMP:{stamp}",
        f"DTSTART:{_utc(start)}",
        f"DTEND:{_utc(end)}",
        "SUMMARY:" + _text(title),
    ]
    if page:
        item.append(f"URL:{settings.VIGIL_SITE_URL}{record_url(page, pk)}")
    if alarm:
        text = _text(title)
        item += ["BEGIN:VALARM", "ACTION:DISPLAY", f"DESCRIPTION:{text}", alarm, "END:VALARM"]
    item.append("END:VEVENT")
    return item


# Control characters are not TEXT (RFC 5545 §3.3.11) and make strict readers drop the feed;
# line breaks the encoder escapes, a tab is allowed.
_CONTROLS = {code: " " for code in [*range(0x20), 0x7F] if chr(code) not in "\t\r\n"}


def _text(value: str) -> str:
    return icalendar.vText(value.translate(_CONTROLS)).to_ical().decode()


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def fold(line: str) -> bytes:
    """RFC 5545 §3.1: a line longer than 75 octets goes on after a CRLF and a space, never
    inside a UTF-8 character; an escape (a backslash and what it escapes) stays whole, as some
    clients need."""
    data = line.encode()
    if len(data) <= 75:
        return data
    parts: list[str] = []
    chunk: list[str] = []
    size, limit = 0, 75
    for unit in _UNITS.findall(line):
        width = len(unit.encode())
        if chunk and size + width > limit:
            parts.append("".join(chunk))
            chunk, size, limit = [], 0, 74  # a continuation starts with its space
        chunk.append(unit)
        size += width
    parts.append("".join(chunk))
    return "\r\n ".join(parts).encode()


_UNITS = re.compile(r"\\.|.", re.DOTALL)


@never_cache  # the page shows the key: no copy of it in a cache or the browser's history
@login_required
@require_POST
def feed_settings(request):
    """Make (or replace) the feed's address and show it once; or revoke it."""
    if request.POST.get("action") == "revoke":
        CalendarFeed.objects.filter(user=request.user).delete()
        messages.success(request, "Revoked: the calendar feed's address no longer works.")
        return redirect("preferences")
    return settings_page(request, new_feed_url=feed_url(new_feed(request.user)))
