"""Visit plans: iCalendar recurrence rules (RFC 5545 RRULE) cut down to what a visit plan needs.

A plan is user input, so it is read by a grammar of our own and evaluated here, never handed to
dateutil: dateutil looks for the next date up to year 9999 when a rule yields nothing (minutes
of CPU for `FREQ=DAILY;BYSETPOS=2`). Here every question is asked about a bounded stretch of
time, one period (day, week, month or year) at a time, so no plan costs more than a few
thousand small steps, whatever it says.
"""

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

from django.conf import settings

EXAMPLE = "e.g. FREQ=WEEKLY;BYDAY=TU"
MAX_LENGTH = 500  # Agreement.plan
# A plan must yield a visit within this many years of its first visit, or it is refused.
LOOK_AHEAD_YEARS = 10
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
TOO_FREQUENT = ("HOURLY", "MINUTELY", "SECONDLY")
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
PARTS = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS", "WKST")
TIME_PARTS = ("BYHOUR", "BYMINUTE", "BYSECOND")

_NUMBER = re.compile(r"[+-]?[0-9]{1,3}")
_COUNT = re.compile(r"[0-9]{1,4}")
_DAY = re.compile(r"([+-]?[0-9]{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
_UNTIL = re.compile(r"([0-9]{8})(?:T([0-9]{6})(Z?))?")


class PlanError(ValueError):
    pass


@dataclass(frozen=True)
class Plan:
    """A checked plan, counted from its first visit."""

    start: date
    frequency: str
    interval: int = 1
    count: int | None = None
    until: date | None = None
    months: frozenset[int] = frozenset()
    month_days: frozenset[int] = (
        frozenset()
    )  # 1…31 from the start of the month, -1…-31 from its end
    weekdays: frozenset[int] = frozenset()  # 0 is Monday
    nth_weekdays: frozenset[tuple[int, int]] = frozenset()  # (2, 0): the second Monday
    positions: frozenset[int] = frozenset()  # BYSETPOS
    week_start: int = 0


def parse_plan(plan: str, first_visit: date, visit_time: time = time()) -> Plan:
    """The plan, counted from the first visit; PlanError names what is wrong, also a plan
    that yields no visit within LOOK_AHEAD_YEARS (the check on save)."""
    rule = _read(plan, first_visit, visit_time)
    last_day = _years_after(first_visit, LOOK_AHEAD_YEARS)
    if next(_occurrences(rule, first_visit, last_day), None) is None:
        raise PlanError(
            f"This rule yields no visit date within {LOOK_AHEAD_YEARS} years of the first visit "
            "(check its COUNT, UNTIL and BY… parts)."
        )
    return rule


def visit_dates(
    plan: str, first_visit: date, after: date | None, until: date, visit_time: time = time()
) -> list[date]:
    """The plan's visit dates after `after` (or from the first visit on) up to `until`. A
    plan that skipped the check on save is refused here too (the look-ahead stops at the
    first visit of any plan that has one)."""
    rule = parse_plan(plan, first_visit, visit_time)
    start = max(first_visit, after + timedelta(days=1)) if after else first_visit
    return list(_occurrences(rule, start, until))


def next_visits(
    plan: str, first_visit: date, count: int = 5, visit_time: time = time()
) -> list[date]:
    rule = _read(plan, first_visit, visit_time)
    last_day = _years_after(first_visit, LOOK_AHEAD_YEARS)
    return list(islice(_occurrences(rule, first_visit, last_day), count))


# The grammar: [RRULE:]NAME=VALUE(;NAME=VALUE)*, each NAME one of PARTS at most once.


def _parts(plan: str) -> dict[str, str]:
    text = plan.strip().upper()
    if len(text) > MAX_LENGTH:
        raise PlanError(f"A plan has at most {MAX_LENGTH} characters.")
    text = text.removeprefix("RRULE:")
    if not text:
        raise PlanError(f"Enter a recurrence rule ({EXAMPLE}).")
    if "\n" in text or "DTSTART" in text or "EXDATE" in text or "RDATE" in text:
        raise PlanError("Give one RRULE line only; the first visit date is where it starts.")
    parts: dict[str, str] = {}
    for part in filter(None, text.split(";")):
        name, equals, value = part.partition("=")
        if not equals or not re.fullmatch(r"[A-Z]+", name) or not value:
            raise PlanError(
                f"This is not a recurrence rule ({EXAMPLE}): each part must be NAME=VALUE."
            )
        if name in TIME_PARTS:
            raise PlanError(
                f"{name} is not allowed: a plan names days only; the visit time is a field of "
                "its own."
            )
        if name not in PARTS:
            raise PlanError(f"{name} is not allowed in a plan (allowed: {', '.join(PARTS)}).")
        if name in parts:
            raise PlanError(f"{name} is given twice.")
        parts[name] = value
    return parts


def _read(plan: str, start: date, visit_time: time) -> Plan:
    return _plan(_parts(plan), start, visit_time)


def _plan(parts: dict[str, str], start: date, visit_time: time) -> Plan:
    frequency = parts.get("FREQ")
    if frequency is None:
        raise PlanError(f"Give the frequency (FREQ=DAILY, WEEKLY, MONTHLY or YEARLY; {EXAMPLE}).")
    if frequency in TOO_FREQUENT:
        raise PlanError("Visits cannot be more frequent than daily.")
    if frequency not in FREQUENCIES:
        raise PlanError("FREQ is DAILY, WEEKLY, MONTHLY or YEARLY.")
    if "COUNT" in parts and "UNTIL" in parts:
        raise PlanError("Give COUNT or UNTIL, not both.")
    weekdays, nth_weekdays = _days(parts.get("BYDAY"), frequency)
    months = _numbers("BYMONTH", parts.get("BYMONTH"), 12, signed=False)
    month_days = _numbers("BYMONTHDAY", parts.get("BYMONTHDAY"), 31, signed=True)
    if not (weekdays or nth_weekdays or month_days):
        # What a calendar program means by a bare FREQ: the first visit's day of the week,
        # of the month, or of the year (dateutil's defaults too).
        if frequency == "WEEKLY":
            weekdays = frozenset([start.weekday()])
        elif frequency == "MONTHLY":
            month_days = frozenset([start.day])
        elif frequency == "YEARLY":
            months = months or frozenset([start.month])
            month_days = frozenset([start.day])
    return Plan(
        start=start,
        frequency=frequency,
        interval=_count("INTERVAL", parts.get("INTERVAL"), 999) or 1,
        count=_count("COUNT", parts.get("COUNT"), 9999),
        until=_until(parts.get("UNTIL"), visit_time),
        months=months,
        month_days=month_days,
        weekdays=weekdays,
        nth_weekdays=nth_weekdays,
        positions=_numbers("BYSETPOS", parts.get("BYSETPOS"), 366, signed=True),
        week_start=_weekday(parts.get("WKST", "MO")),
    )


def _count(name: str, value: str | None, highest: int) -> int | None:
    if value is None:
        return None
    if not _COUNT.fullmatch(value) or not 1 <= int(value) <= highest:
        raise PlanError(f"{name} takes a number from 1 to {highest}.")
    return int(value)


def _numbers(name: str, value: str | None, highest: int, *, signed: bool) -> frozenset[int]:
    if value is None:
        return frozenset()
    numbers = set()
    for item in value.split(","):
        number = int(item) if _NUMBER.fullmatch(item) else 0
        if not 1 <= abs(number) <= highest or (number < 0 and not signed):
            also = f" or -{highest} to -1" if signed else ""
            raise PlanError(f"{name} takes numbers from 1 to {highest}{also}.")
        numbers.add(number)
    return frozenset(numbers)


def _days(value: str | None, frequency: str) -> tuple[frozenset[int], frozenset[tuple[int, int]]]:
    if value is None:
        return frozenset(), frozenset()
    weekdays, nth = set(), set()
    for item in value.split(","):
        match = _DAY.fullmatch(item)
        if match is None:
            raise PlanError(f"BYDAY takes days such as MO,TH or 1MO,-1FR, not {item}.")
        day = DAYS.index(match.group(2))
        if match.group(1) is None:
            weekdays.add(day)
            continue
        number = int(match.group(1))
        if frequency not in ("MONTHLY", "YEARLY") or not 1 <= abs(number) <= 53:
            raise PlanError(
                f"BYDAY={item}: a numbered day (1MO, -1FR) is for FREQ=MONTHLY or YEARLY, "
                "numbered 1 to 53 or -1 to -53."
            )
        nth.add((number, day))
    return frozenset(weekdays), frozenset(nth)


def _weekday(value: str) -> int:
    if value not in DAYS:
        raise PlanError(f"WKST is one of {', '.join(DAYS)}.")
    return DAYS.index(value)


def _until(value: str | None, visit_time: time) -> date | None:
    """The last day a visit may fall on. A time (floating, or the UTC form calendar programs
    export: 20270201T000000Z, read in the company's time zone) ends the day before when it
    comes before the visit's own time: RFC 5545 compares instants, not days."""
    if value is None:
        return None
    match = _UNTIL.fullmatch(value)
    try:
        if match is None:
            raise ValueError(value)
        day, moment, utc = match.groups()
        if moment is None:
            return datetime.strptime(day, "%Y%m%d").date()  # noqa: DTZ007 - a date only
        instant = datetime.strptime(day + moment, "%Y%m%d%H%M%S")  # noqa: DTZ007 - see below
    except ValueError:
        raise PlanError("UNTIL is a date (20271231) or a UTC time (20271231T000000Z).") from None
    if utc:
        instant = instant.replace(tzinfo=UTC).astimezone(ZoneInfo(settings.TIME_ZONE))
    if instant.time().replace(tzinfo=None) < visit_time:
        return instant.date() - timedelta(days=1)
    return instant.date()


# Evaluation: one period after another, every day of it that every BY… part allows.


def _occurrences(plan: Plan, first: date, last: date) -> Iterator[date]:
    """The plan's dates from `first` to `last`, both included. The work is one step per day
    of a bounded number of periods: from `first` (or the start, to count COUNT) to `last`."""
    found = 0
    skip = 0 if plan.count else _period_index(plan, first)
    for days in _periods(plan, skip, last):
        for day in _select(plan, [day for day in days if _allows(plan, day)]):
            if day < plan.start:
                continue
            if (plan.until and day > plan.until) or (plan.count and found >= plan.count):
                return
            found += 1
            if day > last:
                return
            if day >= first:
                yield day


def _select(plan: Plan, days: list[date]) -> list[date]:
    if not plan.positions:
        return days
    size = len(days)
    return [
        day
        for n, day in enumerate(days, start=1)
        if n in plan.positions or n - size - 1 in plan.positions
    ]


def _allows(plan: Plan, day: date) -> bool:
    if plan.months and day.month not in plan.months:
        return False
    if plan.month_days:
        length = calendar.monthrange(day.year, day.month)[1]
        if day.day not in plan.month_days and day.day - length - 1 not in plan.month_days:
            return False
    if plan.weekdays or plan.nth_weekdays:
        weekday = day.weekday()
        if weekday in plan.weekdays:
            return True
        if plan.frequency == "MONTHLY" or plan.months:  # the nth weekday of its month
            number, length = day.day, calendar.monthrange(day.year, day.month)[1]
        else:  # of its year
            number, length = day.timetuple().tm_yday, 365 + calendar.isleap(day.year)
        from_start, from_end = (number - 1) // 7 + 1, -((length - number) // 7 + 1)
        nth = plan.nth_weekdays
        return (from_start, weekday) in nth or (from_end, weekday) in nth
    return True


def _period_index(plan: Plan, day: date) -> int:
    """The number of the period (0 is the first visit's) that holds `day`, or 0 before it."""
    start = _period_start(plan, 0)
    if day <= start:
        return 0
    if plan.frequency == "DAILY":
        steps = (day - start).days
    elif plan.frequency == "WEEKLY":
        steps = (day - start).days // 7
    elif plan.frequency == "MONTHLY":
        steps = (day.year - start.year) * 12 + day.month - start.month
    else:
        steps = day.year - start.year
    return steps // plan.interval


def _period_start(plan: Plan, index: int) -> date:
    start, steps = plan.start, index * plan.interval
    if plan.frequency == "DAILY":
        return start + timedelta(days=steps)
    if plan.frequency == "WEEKLY":
        week = start - timedelta(days=(start.weekday() - plan.week_start) % 7)
        return week + timedelta(weeks=steps)
    if plan.frequency == "MONTHLY":
        month = start.year * 12 + start.month - 1 + steps
        return date(month // 12, month % 12 + 1, 1)
    return date(start.year + steps, 1, 1)


def _periods(plan: Plan, index: int, last: date) -> Iterator[list[date]]:
    """Every day of each period from the index-th on, up to the one holding `last`."""
    while True:
        try:
            first = _period_start(plan, index)
            end = _period_end(plan, first)
        except (ValueError, OverflowError):  # past year 9999
            return
        if first > last:
            return
        yield [first + timedelta(days=n) for n in range((end - first).days + 1)]
        index += 1


def _period_end(plan: Plan, first: date) -> date:
    if plan.frequency == "DAILY":
        return first
    if plan.frequency == "WEEKLY":
        return first + timedelta(days=6)
    if plan.frequency == "MONTHLY":
        return first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return first.replace(month=12, day=31)


def _years_after(day: date, years: int) -> date:
    return date(min(day.year + years, 9999), 12, 31)
