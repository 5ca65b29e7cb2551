"""Working time: is this person working at this instant, when has N hours of their working time
passed, and when do they next work.

A person's calendar is their working days and hours (else the company's, WorkingCalendar), in
their time zone (else the company's), less the public holidays of their team's region (else
the company's region) from the `holidays` library, the days off an administrator added (for
everyone or for their team) and their absences. Working time is a run of half-open intervals
[start, end) of instants: a local working day becomes two instants through zoneinfo, so a day
across a DST change lasts the time that passes (01:00–05:00 on the night the clocks go forward
is three hours, on the night they go back five). A start the clocks skip is read as the time it
becomes (02:30 is 03:30), an end the clocks repeat as its second passing.

Nothing here is switched on by itself: WorkingCalendar.enabled says whether deadlines are
counted in working time, and the callers ask it."""

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import holidays
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q

from crm.models import Absence, Holiday, Team, User, WorkingCalendar, time_zones

logger = logging.getLogger(__name__)

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

    def off(self, day: date) -> bool:
        """A holiday or an absence (a day of the week not worked is not "off")."""
        return day in self.days_off or self.public_holiday(day)

    def works_on(self, day: date) -> bool:
        return day.isoweekday() in self.days and not self.off(day)

    def shift(self, day: date) -> tuple[datetime, datetime] | None:
        """The working hours that start on the local `day`, as UTC instants; None on a day
        off. An end at or before the start is the next day's (a night shift), cut at midnight
        when that day is a holiday or an absence."""
        if not self.works_on(day):
            return None
        start = self.instant(day, self.starts)
        if self.ends > self.starts:
            end = self.instant(day, self.ends, latest=True)
        elif self.off(day + timedelta(days=1)):
            end = self.instant(day + timedelta(days=1), time(0))
        else:
            end = self.instant(day + timedelta(days=1), self.ends, latest=True)
        # Hours that fall wholly inside the hour the clocks skip are no time at all.
        return (start, end) if end > start else None

    def instant(self, day: date, at: time, *, latest: bool = False) -> datetime:
        """The local `at` of `day` as a UTC instant: a time the clocks pass twice, the first
        passing (the second if `latest`: the end of a working day); a time they skip, the
        moment they jump."""
        naive = datetime.combine(day, at)
        first = naive.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        second = naive.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        if first == second:
            return first
        early, late = min(first, second), max(first, second)
        if first.astimezone(self.zone).replace(tzinfo=None) == naive:  # passed twice
            return late if latest else early
        # Skipped: the first minute after `early` that is on the far side of the jump.
        offset = late.astimezone(self.zone).utcoffset()
        low, high = 0, int((late - early).total_seconds() // 60)
        while low < high:
            middle = (low + high) // 2
            if (early + timedelta(minutes=middle)).astimezone(self.zone).utcoffset() == offset:
                high = middle
            else:
                low = middle + 1
        return early + timedelta(minutes=low)

    def shifts(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The working intervals that end after `since`, in order; NoWorkingTime after
        HORIZON_DAYS days without one. The day before since's local day comes first: its
        night shift may still run."""
        day, idle = since.astimezone(self.zone).date() - timedelta(days=1), 0
        previous_end = None
        while idle < HORIZON_DAYS:
            shift = self.shift(day)
            day += timedelta(days=1)
            if shift and previous_end is not None and shift[0] < previous_end:
                # Round the clock, the night the clocks go back: the hour is counted once.
                shift = (previous_end, shift[1]) if shift[1] > previous_end else None
            if shift and shift[1] > since:
                idle = 0
                previous_end = shift[1]
                yield shift
            else:
                idle += 1
        raise NoWorkingTime(f"No working time within {HORIZON_DAYS} days of {day:%Y-%m-%d}.")

    def is_working(self, at: datetime) -> bool:
        day = at.astimezone(self.zone).date()
        shifts = (self.shift(day - timedelta(days=1)), self.shift(day))
        return any(shift is not None and shift[0] <= at < shift[1] for shift in shifts)

    def next_working_instant(self, at: datetime) -> datetime:
        """`at` itself when working, else the start of the next working interval."""
        start, _ = next(self.shifts(at))
        return max(start, at)

    def working_between(self, start: datetime, end: datetime) -> timedelta:
        """How much working time passes from `start` to `end`."""
        total = timedelta(0)
        if end <= start:
            return total
        for begin, finish in self.shifts(start):
            if begin >= end:
                break
            total += min(finish, end) - max(begin, start)
        return total

    def back(self, end: datetime, duration: timedelta) -> datetime:
        """The latest instant from which `duration` of working time has passed by `end`: the
        wall clock's `end - duration`, in working time."""
        if duration < timedelta(0):
            raise ValueError("Working time is taken back, not added.")
        if not duration:
            return end
        window = timedelta(days=max(7, duration.days * 3))
        start = end
        while end - start < timedelta(days=HORIZON_DAYS):
            start -= window
            # The shifts of the window, read forwards (they know about round-the-clock days
            # and DST), counted from the end backwards.
            intervals = []
            for begin, finish in self.shifts(start):
                if begin >= end:
                    break
                intervals.append((max(begin, start), min(finish, end)))
            left = duration
            for begin, finish in reversed(intervals):
                if finish - begin >= left:
                    return finish - left
                left -= finish - begin
            window *= 2
        raise NoWorkingTime(f"No working time within {HORIZON_DAYS} days before {end:%Y-%m-%d}.")

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant at which `duration` of working time has passed since `start` (for no
        time at all: the next working instant)."""
        if duration < timedelta(0):
            raise ValueError("Working time is added, not taken away.")
        left = duration
        for begin, end in self.shifts(start):
            begin = max(begin, start)
            if end - begin >= left:
                return begin + left
            left -= end - begin
        raise AssertionError("unreachable: shifts() raises when it runs out")  # pragma: no cover


def calendar_of(user: User, since: datetime, company: WorkingCalendar | None = None) -> Calendar:
    """`user`'s calendar from the instant `since` on (days off that ended before it are not
    read). Three queries: the company's calendar (unless given), holidays, absences; four if
    the user's team is not loaded."""
    return calendars_for([user], since, company)[user.pk]


def calendars_for(
    users: Iterable[User], since: datetime, company: WorkingCalendar | None = None
) -> dict[int, Calendar]:
    """The calendars of many users at once (by user id), in three queries whatever their
    number: the company's calendar (unless given), the holidays, the absences. Give the users
    with their teams loaded (select_related("team")). Each user's days and hours are their
    own, else their team's, else the company's."""
    users = list(users)
    company = company or WorkingCalendar.current()
    first = since.date() - timedelta(days=2)  # a day early in any zone, and its night shift
    added: dict[int | None, set[date]] = {}
    teams = {user.team_id for user in users}
    holidays_added = Holiday.objects.filter(Q(team=None) | Q(team__in=teams), date__gte=first)
    for team_id, day in holidays_added.values_list("team_id", "date"):
        added.setdefault(team_id, set()).add(day)
    absent: dict[int, set[date]] = {}
    absences = Absence.objects.filter(user__in=[user.pk for user in users], last_day__gte=first)
    for user_id, first_day, last_day in absences.values_list("user_id", "first_day", "last_day"):
        length = (last_day - first_day).days + 1
        absent.setdefault(user_id, set()).update(first_day + timedelta(n) for n in range(length))
    known_zones = time_zones()
    calendars = {}
    for user in users:
        team = user.team
        hours = (user, team, company) if team is not None else (user, company)
        # A value written around the forms' validation (SQL, an import) is passed over.
        days = next((owner.work_days for owner in hours if _days(owner.work_days)), "")
        starts, ends = next(
            (owner.day_starts, owner.day_ends)
            for owner in hours
            if owner.day_starts is not None and owner.day_ends is not None
        )
        if team is not None and team.holiday_country:
            country, subdivision = team.holiday_country, team.holiday_subdivision
        else:
            country, subdivision = company.holiday_country, company.holiday_subdivision
        days_off = (
            added.get(None, set()) | added.get(user.team_id, set()) | absent.get(user.pk, set())
        )
        calendars[user.pk] = schedule(
            user.time_zone if user.time_zone in known_zones else settings.TIME_ZONE,
            days,
            starts,
            ends,
            country,
            subdivision,
            frozenset(days_off),
        )
    return calendars


def team_calendars(
    teams: Iterable[Team], since: datetime, company: WorkingCalendar | None = None
) -> dict[int, Calendar]:
    """The shifts of teams that have their own (Team.day_starts/day_ends), by team id, in the
    company's zone, with their region's and their added holidays; one query (two without
    `company`). A team without shifts has no calendar of its own here."""
    company = company or WorkingCalendar.current()
    teams = [team for team in teams if team.day_starts is not None and team.day_ends is not None]
    first = since.date() - timedelta(days=2)
    added: dict[int | None, set[date]] = {}
    if teams:
        rows = Holiday.objects.filter(Q(team=None) | Q(team__in=teams), date__gte=first)
        for team_id, day in rows.values_list("team_id", "date"):
            added.setdefault(team_id, set()).add(day)
    calendars = {}
    for team in teams:
        region = (team, company)[0 if team.holiday_country else 1]
        calendars[team.pk] = schedule(
            settings.TIME_ZONE,
            team.work_days if _days(team.work_days) else company.work_days,
            team.day_starts,  # type: ignore[arg-type] # both set: filtered above
            team.day_ends,  # type: ignore[arg-type]
            region.holiday_country,
            region.holiday_subdivision,
            frozenset(added.get(None, set()) | added.get(team.pk, set())),
        )
    return calendars


def _days(work_days: str) -> bool:
    return bool(work_days) and set(work_days) <= set("1234567")


def schedule(
    zone: str,
    days: str,
    starts: time,
    ends: time,
    country: str = "",
    subdivision: str = "",
    days_off: frozenset[date] = frozenset(),
) -> Calendar:
    """A calendar of no particular user: a send window in a lead's zone and country, say.
    `days` are ISO weekday digits ("12345")."""
    return Calendar(
        zone=ZoneInfo(zone),
        days=frozenset(int(day) for day in days if day in "1234567"),
        starts=starts,
        ends=ends,
        days_off=days_off,
        public_holiday=public_holidays(country, subdivision),
    )


@cache  # one test a region, and one warning for a region not known
def public_holidays(country: str, subdivision: str) -> Callable[[date], bool]:
    """Is the day a public holiday of the region? Nothing is, without a country. (The library's
    PUBLIC category: Bavaria's Assumption Day, a Catholic holiday there, is not in it; add it in
    the admin as a day off for the teams that keep it.)"""
    country = country.upper()
    if not country:
        return lambda day: False
    regions = _supported().get(country)
    if regions is None or (subdivision and subdivision not in regions):
        # Data, not settings (a lead's country, say): no holidays rather than a failed send.
        logger.warning("No public holidays known for %s %s", country, subdivision)
        return lambda day: False
    return lambda day: day in _public_holidays(country, subdivision, day.year)


@lru_cache(maxsize=1024)
def _public_holidays(country: str, subdivision: str, year: int) -> frozenset[date]:
    # One year, read once, kept as a frozenset: a holidays object fills itself in as it is
    # asked, and threads asking one at once leave years half-filled for good.
    region = holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    return frozenset(region)


@cache
def _supported() -> dict[str, list[str]]:
    return holidays.list_supported_countries()


def clean_holiday_region(owner) -> None:
    """A model's holiday_country (in capitals) and holiday_subdivision, checked when given."""
    owner.holiday_country = owner.holiday_country.upper()
    if owner.holiday_country or owner.holiday_subdivision:
        validate_holiday_region(owner.holiday_country, owner.holiday_subdivision)


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
