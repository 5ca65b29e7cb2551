"""Dates as people read them: the one format of crm/formats, in the viewer's time zone, with
"in 3 h" / "2 days ago" beside it."""

import functools
from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.utils import formats, timezone, translation
from django.utils.html import format_html
from django.utils.safestring import mark_safe

MINUTE, HOUR, DAY = 60, 3600, 86400


def relative(at: datetime | date, now: datetime) -> str:
    """`at` from `now`, roughly: "in 25 min", "3 h ago", "in 2 days", "5 weeks ago"; a date
    (no time) in whole local days: "today", "tomorrow", "3 days ago"."""
    if not isinstance(at, datetime):
        days = (at - timezone.localdate(now)).days
        if days == 0:
            return "today"
        if days in (1, -1):
            return "tomorrow" if days == 1 else "yesterday"
        return _phrase(abs(days) * DAY, future=days > 0)
    seconds = (at - now).total_seconds()
    if abs(seconds) < MINUTE:
        return "now"
    return _phrase(abs(seconds), future=seconds > 0)


def _phrase(seconds: float, *, future: bool) -> str:
    if seconds < HOUR:
        amount = f"{int(seconds // MINUTE)} min"
    elif seconds < DAY:
        amount = f"{int(seconds // HOUR)} h"
    elif seconds < 14 * DAY:
        days = int(seconds // DAY)
        amount = f"{days} day{'s' if days > 1 else ''}"
    elif seconds < 60 * DAY:
        amount = f"{int(seconds // (7 * DAY))} weeks"
    else:
        months = int(seconds // (30 * DAY))
        amount = f"{months} month{'s' if months > 1 else ''}"
    return f"in {amount}" if future else f"{amount} ago"


def shown(at: datetime | date | None) -> str:
    """`at` in the one format: a datetime in the current (the viewer's) time zone."""
    if at is None:
        return ""
    return _shown(at, timezone.get_current_timezone_name(), translation.get_language())


@functools.lru_cache(maxsize=8192)
def _shown(at: datetime | date, zone: str, language: str | None) -> str:
    # A pure function of its arguments (the formats are code): a dashboard shows the same
    # few dozen moments on every reload, and Django's formatter costs ~25 µs a call.
    if isinstance(at, datetime):
        return formats.date_format(timezone.localtime(at), "DATETIME_FORMAT")
    return formats.date_format(at, "DATE_FORMAT")


def when(at: datetime | date | None, now: datetime | None = None, *, ago: bool = True) -> str:
    """A <time> element: the date in the one format, then how far it is from `now`."""
    if at is None:
        return ""
    # The stamp is in the key: two equal instants in different zones write different stamps.
    stamp = at.isoformat() if isinstance(at, datetime) else at.strftime("%Y-%m-%d")
    stamp = _time_element(
        stamp, at, timezone.get_current_timezone_name(), translation.get_language()
    )
    if not ago:
        return stamp
    # relative() writes digits and plain words only: nothing in it to escape.
    return mark_safe(  # noqa: S308
        f'{stamp} <span class="muted when">({relative(at, now or timezone.now())})</span>'
    )


@functools.lru_cache(maxsize=8192)
def _time_element(stamp: str, at: datetime | date, zone: str, language: str | None) -> str:
    # A list page shows fifty of these: built once per moment, zone and language.
    return format_html('<time datetime="{}">{}</time>', stamp, _shown(at, zone, language))


# The years a typed time may fall in, in the user's time zone. A time of 9999-12-31 23:59 in
# Los Angeles is year 10000 in UTC: PostgreSQL stores it, and every page reading it back
# (the account's, the task's, the dashboard) fails, for everyone who may see it.
YEARS = (1900, 9000)


def within_years(value) -> None:
    """A typed time within YEARS (checked in the zone it was typed in): a validator for every
    form field a person types a time into."""
    if value is not None and not YEARS[0] <= value.year <= YEARS[1]:
        raise ValidationError(f"Give a time between the years {YEARS[0]} and {YEARS[1]}.")
