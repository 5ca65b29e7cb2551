"""Crontab arithmetic on the company's wall clock: which slot is due, and how many were missed.

A crontab names local wall-clock times ("02:30 every day"), and a slot is the instant such a
time stands for. Twice a year the wall clock and real time disagree, and the rule is the one
people expect and Beat follows:

- a local time that happens twice (the clock goes back) is one slot, at its first occurrence;
- a local time that does not exist (the clock goes forward) is one slot, at the first instant
  after the gap; several such times, and a real time at the end of the gap, are that one slot.

croniter walks naive wall-clock times; `_instant` turns each into its one real instant. That
mapping never goes backwards in time, which is what lets the searches below stop early.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from croniter import croniter

# Counting missed slots stops here: an every-minute job down for a month need not count them all.
MAX_COUNTED = 100_000


def _instant(wall: datetime, zone: tzinfo) -> datetime:
    """The real instant a local wall-clock time stands for, in UTC."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first  # an ordinary time, or the first of two
    # In a gap, fold=1 reads the wall time with the offset of after the change, which gives an
    # instant before it; step from there to the change itself, the first valid instant.
    moment = wall.replace(tzinfo=zone, fold=1).astimezone(UTC).replace(second=0, microsecond=0)
    while moment.astimezone(zone).replace(tzinfo=None) < wall:
        moment += timedelta(minutes=1)
    return moment


def local_instant(wall: datetime, tz: str) -> datetime:
    """A naive local wall-clock time in zone `tz` as an aware instant, by the rules above (for
    anything scheduled at a local time: a visit at 09:00, a task due at 02:30)."""
    return _instant(wall, ZoneInfo(tz))


def _wall(moment: datetime, zone: tzinfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def _walls_after(expression: str, start: datetime) -> Iterator[datetime]:
    it = croniter(expression, start)
    while True:
        yield it.get_next(datetime)


def latest_slot(expression: str, tz: str, now: datetime) -> datetime:
    """The most recent slot at or before `now`."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    start = local.replace(tzinfo=None, microsecond=0) + timedelta(seconds=1)
    first_offset, offset = local.replace(fold=0).utcoffset(), local.utcoffset()
    if local.fold and first_offset is not None and offset is not None:
        # The clock is repeating an hour: the wall times up to its end already passed once.
        start += first_offset - offset
    it = croniter(expression, start)
    while True:
        slot = _instant(it.get_prev(datetime), zone)
        if slot <= now:
            return slot


def next_slot(expression: str, tz: str, now: datetime) -> datetime:
    """The first slot after `now`."""
    zone = ZoneInfo(tz)
    # No wall time before now's stands for an instant after now: the mapping never goes back.
    for wall in _walls_after(expression, _wall(now, zone)):
        slot = _instant(wall, zone)
        if slot > now:
            return slot
    raise AssertionError("unreachable: croniter never ends")


def slots_between(expression: str, tz: str, after: datetime, before: datetime) -> int:
    """How many slots fall strictly between `after` and `before`."""
    zone = ZoneInfo(tz)
    count = 0
    previous = after
    for wall in _walls_after(expression, _wall(after, zone)):
        slot = _instant(wall, zone)
        if slot >= before or count >= MAX_COUNTED:
            return count
        if slot > previous:
            count += 1
            previous = slot
    raise AssertionError("unreachable: croniter never ends")
