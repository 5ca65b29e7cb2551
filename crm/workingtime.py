"""Working time: is this person working at this instant, when has N hours of their working time
passed, and when do they next work.

A person's calendar is their working days and hours (else the company's, WorkingCalendar), in
their time zone (else the company's), less the public holidays of their team's region (else
the company's region) from the `holidays` library, the days off an administrator added (for
everyone or for their team) and their absences. Working time is a run of half-open intervals
[start, end) of instants: a local working day becomes two instants through zoneinfo, so a day
across a DST change is as long as the clock on the wall says (01:00–05:00 on the night the
clocks go forward is three hours), and one across the night they go back is five.

Nothing here is switched on by itself: WorkingCalendar.enabled says whether deadlines are
counted in working time, and the callers ask it."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q

from crm.models import Absence, Holiday, User, WorkingCalendar, time_zones

# How far a calendar looks ahead for working time before it says there is none: longer than
# the longest absence (a year) with the holidays around it.
HORIZON_DAYS = 3 * 366


class NoWorkingTime(ValueError):
    """A calendar with no working time in HORIZON_DAYS (no working day, or absent all along)."""


@dataclass(frozen=True)
class Calendar:
    zone: ZoneInfo
    days: frozenset[int]  # ISO weekdays worked
    starts: time
    ends: time
    days_off: frozenset[date]  # holidays added in the admin, and absences
    public_holiday: Callable[[date], bool]

    def works_on(self, day: date) -> bool:
        return (
            day.isoweekday() in self.days
            and day not in self.days_off
            and not self.public_holiday(day)
        )

    def shift(self, day: date) -> tuple[datetime, datetime] | None:
        """The working hours of the local `day` as UTC instants; None on a day off."""
        if not self.works_on(day):
            return None
        start = datetime.combine(day, self.starts, tzinfo=self.zone).astimezone(UTC)
        end = datetime.combine(day, self.ends, tzinfo=self.zone).astimezone(UTC)
        # Hours that fall wholly inside the hour the clocks skip are no time at all.
        return (start, end) if end > start else None

    def shifts(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The working intervals that end after `since`, in order. A working day ends on the
        local day it starts (ends > starts), so the first candidate is since's local day."""
        first = since.astimezone(self.zone).date()
        for n in range(HORIZON_DAYS):
            shift = self.shift(first + timedelta(days=n))
            if shift and shift[1] > since:
                yield shift
        raise NoWorkingTime(f"No working time within {HORIZON_DAYS} days of {since:%Y-%m-%d}.")

    def is_working(self, at: datetime) -> bool:
        shift = self.shift(at.astimezone(self.zone).date())
        return shift is not None and shift[0] <= at < shift[1]

    def next_working_instant(self, at: datetime) -> datetime:
        """`at` itself when working, else the start of the next working interval."""
        start, _ = next(self.shifts(at))
        return max(start, at)

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant at which `duration` of working time has passed since `start`."""
        left = duration
        for begin, end in self.shifts(start):
            begin = max(begin, start)
            if end - begin >= left:
                return begin + left
            left -= end - begin
        raise AssertionError("unreachable: shifts() raises when it runs out")  # pragma: no cover


def calendar_of(user: User, since: date, company: WorkingCalendar | None = None) -> Calendar:
    """`user`'s calendar from the local day `since` on (absences that ended before it are not
    read). Three queries: the company's calendar (unless given), holidays, absences."""
    company = company or WorkingCalendar.current()
    zone_name = user.time_zone if user.time_zone in time_zones() else settings.TIME_ZONE
    if user.day_starts is not None and user.day_ends is not None:
        starts, ends = user.day_starts, user.day_ends
    else:
        starts, ends = company.day_starts, company.day_ends
    team = user.team
    if team is not None and team.holiday_country:
        country, subdivision = team.holiday_country, team.holiday_subdivision
    else:
        country, subdivision = company.holiday_country, company.holiday_subdivision
    added = Holiday.objects.filter(Q(team=None) | Q(team_id=user.team_id), date__gte=since)
    days_off = set(added.values_list("date", flat=True))
    for first, last in Absence.objects.filter(user=user, last_day__gte=since).values_list(
        "first_day", "last_day"
    ):
        days_off.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    return Calendar(
        zone=ZoneInfo(zone_name),
        days=frozenset(int(day) for day in (user.work_days or company.work_days)),
        starts=starts,
        ends=ends,
        days_off=frozenset(days_off),
        public_holiday=public_holidays(country, subdivision),
    )


@cache
def public_holidays(country: str, subdivision: str) -> Callable[[date], bool]:
    """Is the day a public holiday of the region? Nothing is, without a country."""
    if not country:
        return lambda day: False
    region = holidays.country_holidays(country, subdiv=subdivision or None)
    return region.__contains__  # expands to each year it is asked about


@cache
def _supported() -> dict[str, list[str]]:
    return holidays.list_supported_countries()


def validate_holiday_region(country: str, subdivision: str) -> None:
    """A country and region the holidays library knows: ISO codes, e.g. DE and BY."""
    if subdivision and not country:
        raise ValidationError({"holiday_country": "A region needs its country."})
    regions = _supported().get(country.upper())
    if regions is None or country != country.upper():
        raise ValidationError(
            {
                "holiday_country": f"“{country}” is not a country code Vigil knows holidays of "
                "(ISO 3166, in capitals, e.g. DE)."
            }
        )
    if subdivision and subdivision not in regions:
        raise ValidationError(
            {
                "holiday_subdivision": f"{country} has no region “{subdivision}” (e.g. "
                f"{', '.join(regions[:3]) or 'none'})."
            }
        )
