"""Crontab arithmetic in a given time zone: which slot is due, and how many were missed."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

# Counting missed slots stops here: an every-minute job down for a month need not count them all.
MAX_COUNTED = 100_000


def latest_slot(expression: str, tz: str, now: datetime) -> datetime:
    """The most recent scheduled time at or before `now`."""
    local = now.astimezone(ZoneInfo(tz)).replace(microsecond=0) + timedelta(seconds=1)
    return croniter(expression, local).get_prev(datetime)


def next_slot(expression: str, tz: str, now: datetime) -> datetime:
    return croniter(expression, now.astimezone(ZoneInfo(tz))).get_next(datetime)


def slots_between(expression: str, tz: str, after: datetime, before: datetime) -> int:
    """How many scheduled times fall strictly between `after` and `before`."""
    it = croniter(expression, after.astimezone(ZoneInfo(tz)))
    count = 0
    while count < MAX_COUNTED and it.get_next(datetime) < before:
        count += 1
    return count
