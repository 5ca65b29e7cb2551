"""Send windows: with SendSettings.window on, each step goes out inside the window (its days and
hours) of the lead's own day, on a day that is not a public holiday of its country
(crm.workingtime.schedule: a calendar of no user, in the lead's zone).

A step due on a local day goes out in that day's window if the day has one and it is still
open, else in the next window. The window is worked out in Python once per step and stored on
the enrollment (send_after, send_until), so that a run claims with one indexed SQL condition,
`send_after <= as_of < send_until`, whatever the zones. Empty means "to be worked out": a step
sent, a pause, a lead or account moved elsewhere and new settings empty them; a window that
passed unused (the run was down, a cap held the step) is worked out again. At most one step
a day holds in the lead's day: a window opens no earlier than the day after the last run that
worked on the enrollment."""

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.runner import schedule_of
from crm.slots import latest_slot, local_instant, next_slot
from crm.workingtime import Calendar, NoWorkingTime, schedule
from nurture import places
from nurture.models import Enrollment, SendSettings

log = logging.getLogger(__name__)

ACTIVE = Enrollment.Status.ACTIVE
CHUNK = 1000  # enrollments given their windows per transaction
# Without a window, the day's steps go out from the company's 08:00: the job ran daily at
# 08:00 before it ran every quarter hour, and a run still works as of that day's 08:00.
DAILY_AT = time(8)
DAILY = f"{DAILY_AT.minute} {DAILY_AT.hour} * * *"
HOUR = timedelta(hours=1)


class Windows:
    """The send windows of one run's settings, with a calendar per place and a window per
    (place, due day, earliest instant) worked out once."""

    def __init__(self, rules: SendSettings, company: places.Place) -> None:
        self.rules = rules
        self.company = company
        self._calendars: dict[places.Place, Calendar] = {}
        self._windows: dict[tuple, tuple[datetime, datetime]] = {}

    def calendar(self, place: places.Place) -> Calendar:
        calendar = self._calendars.get(place)
        if calendar is None:
            holidays = self.rules.skip_holidays
            calendar = self._calendars[place] = schedule(
                place.zone,
                self.rules.window_days,
                self.rules.window_starts,
                self.rules.window_ends,
                place.country if holidays else "",
                place.subdivision if holidays else "",
            )
        return calendar

    def window(
        self, place: places.Place, due_at: datetime, earliest: datetime
    ) -> tuple[datetime, datetime]:
        """The window a step due at `due_at` goes out in, not opening before `earliest`: the
        rest of its local day's window if there is some left, else the next window."""
        calendar = self.calendar(place)
        day = due_at.astimezone(calendar.zone).date()
        key = (place, day, earliest)
        if key not in self._windows:
            since = max(calendar.instant(day, time(0)), earliest)
            start, end = next(calendar.shifts(since))
            self._windows[key] = (max(start, since), end)
        return self._windows[key]

    def earliest(
        self, place: places.Place, as_of: datetime, last_run_at: datetime | None
    ) -> datetime:
        """Not before `as_of`, nor on the lead's day of the last run that worked on it."""
        if last_run_at is None:
            return as_of
        calendar = self.calendar(place)
        day = last_run_at.astimezone(calendar.zone).date() + timedelta(days=1)
        return max(as_of, calendar.instant(day, time(0)))


def load(*, lock: bool = False) -> tuple[SendSettings, Windows | None]:
    """The settings a batch works with, and its windows when the window is on. With `lock`,
    the settings' row is held to the end of the transaction: a save of new settings (which
    empties the windows worked out under the old ones) waits for the batch, or the batch sees
    the new settings. Taken before any enrollment row, in the order the save takes them."""
    rules = SendSettings.current(lock=lock)
    return rules, (Windows(rules, places.company_place()) if rules.window else None)


# --- Claiming ------------------------------------------------------------------------------


def claimable(as_of: datetime, windowed: bool) -> Q:
    """The enrollments a run may work on at `as_of`."""
    if windowed:
        return Q(
            status=ACTIVE,
            enrolled_at__lte=as_of,
            send_after__lte=as_of,
            send_until__gt=as_of,
        )
    return due(as_of) & (Q(send_after=None) | Q(send_after__lte=as_of))


def _midnight(day) -> datetime:
    return local_instant(datetime.combine(day, time()), settings.TIME_ZONE)


def due(as_of: datetime) -> Q:
    """Without a window: active enrollments enrolled by the day's 08:00 (company time) whose
    next step falls on or before that company day, and that no run has worked on since that
    day began. Before 08:00 that is the day before's, whose steps went already."""
    slot = latest_slot(DAILY, settings.TIME_ZONE, as_of)
    today = timezone.localdate(slot, timezone.get_default_timezone())
    return Q(
        status=ACTIVE, next_due_at__lt=_midnight(today + timedelta(days=1)), enrolled_at__lte=slot
    ) & (Q(last_run_at=None) | Q(last_run_at__lt=_midnight(today)))


# --- Working windows out ---------------------------------------------------------------------


def to_schedule(as_of: datetime) -> Q:
    """Active enrollments with a step or a close ahead and no window, or one that passed."""
    return Q(status=ACTIVE, next_due_at__isnull=False) & (
        Q(send_until=None) | Q(send_until__lte=as_of)
    )


def schedule_windows(as_of: datetime, *, durable: bool = True) -> int:
    """Give each enrollment `to_schedule` its window, a chunk at a time. A chunk is locked
    (SKIP LOCKED: an enrollment a runner is sending is left to the next run, which sees it
    moved on) and written with one UPDATE per distinct window. The settings are read after the
    lock, so windows never outlive the settings they were worked out under (SendSettings.save
    empties them in one transaction). Returns how many it gave a window."""
    done, after = 0, 0
    while True:
        with transaction.atomic(durable=durable):
            _, windows = load(lock=True)
            if windows is None:
                return done  # switched off meanwhile
            rows = list(
                Enrollment.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(to_schedule(as_of), pk__gt=after)
                .order_by("pk")
                .values_list(
                    "pk",
                    "next_due_at",
                    "last_run_at",
                    "rph__time_zone",
                    "rph__country",
                    "rph__contact__account__country",
                )[:CHUNK]
            )
            if not rows:
                return done
            after = rows[-1][0]
            done += write(_windows_of(rows, windows, as_of))


Grouped = dict[tuple[datetime, datetime | None], list[int]]  # (send_after, send_until): ids


def _windows_of(rows: Iterable[tuple], windows: Windows, as_of: datetime) -> Grouped:
    """The windows of rows of schedule_windows."""
    grouped: Grouped = defaultdict(list)
    for pk, due_at, last_run_at, zone, country, account_country in rows:
        place = places.place(zone, country, account_country or "", windows.company)
        try:
            earliest = windows.earliest(place, as_of, last_run_at)
            grouped[windows.window(place, due_at, earliest)].append(pk)
        except NoWorkingTime:  # the settings refuse a window of no day; a row must not stop us
            log.warning("nurture: enrollment %s has no send window in %s", pk, place)
    return grouped


def write(grouped: Grouped) -> int:
    for (send_after, send_until), ids in grouped.items():
        Enrollment.objects.filter(pk__in=ids).update(send_after=send_after, send_until=send_until)
    return sum(len(ids) for ids in grouped.values())


# --- Holding a step back ---------------------------------------------------------------------


def next_hour(as_of: datetime) -> datetime:
    return as_of.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + HOUR


def hold(enrollments: list[Enrollment], as_of: datetime, windows: Windows | None) -> int:
    """A cap held these steps back this hour: each goes in a later run, from the next hour,
    inside its window (the rest of this one, or the next). Without a window, from the next
    hour of the company's day, never before its 08:00. Loaded with rph__contact__account."""
    if not enrollments:
        return 0
    after = next_hour(as_of)
    if windows is None:
        if timezone.localtime(after, timezone.get_default_timezone()).time() < DAILY_AT:
            after = next_slot(DAILY, settings.TIME_ZONE, after - timedelta(microseconds=1))
        return write({(after, None): [e.pk for e in enrollments]})
    grouped: Grouped = defaultdict(list)
    for enrollment in enrollments:
        place = places.place_of(enrollment.rph, windows.company)
        assert enrollment.next_due_at is not None  # noqa: S101 - a claimed step has a day
        try:
            grouped[windows.window(place, enrollment.next_due_at, after)].append(enrollment.pk)
        except NoWorkingTime:  # settings written around their validation: the next hour
            grouped[after, None].append(enrollment.pk)
    return write(grouped)


def schedule_warning() -> str:
    """Why a send window would open late, or "": nurture_send runs less than hourly (an
    install from before the window kept its old daily schedule in Admin → Periodic tasks)."""
    expression, zone, enabled = schedule_of("nurture_send")
    start = timezone.now()
    first = next_slot(expression, zone, start)
    if enabled and next_slot(expression, zone, first) - first <= HOUR:
        return ""
    return (
        f"nurture_send runs at “{expression}”{'' if enabled else ' (disabled)'}: a window "
        "opens only when it runs. Set it to every 15 minutes in Admin → Periodic tasks."
    )
