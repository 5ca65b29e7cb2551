"""Grace deadlines of blocking notifications, counted in each user's working time when the
company switches it on (crm.WorkingCalendar.enabled), on the wall clock otherwise.

A notification holds how its deadline is counted: `grace` from `grace_from` (a rule's grace
period from the run that raised it, or an unlock's extension from the unlock). On the wall clock
that is grace_from + grace; in working time it is the instant `grace` of the user's working time
has passed (crm.workingtime), so a weekend, a holiday or an absence does not run it down. A
deadline a person set (no grace: resolve by an instant) keeps the working time it gave, counted
on the user's usual days and hours; it moves only when days off fall in between.

The deadline is worked out per user and grace, not per notification: one user's calendar serves
every notification they got from one run, and each batch of users is one UPDATE. It is worked
out again whenever what it depends on changes (an absence, a holiday, a user's or a team's hours,
the calendar itself: notifications.receivers) and by the daily job."""

import dataclasses
from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet

from crm.models import User, WorkingCalendar
from crm.sql import update_rows
from crm.workingtime import Calendar, NoWorkingTime, calendars_for
from notifications.models import Notification, ReminderRule

BATCH = 200  # users per transaction
OPEN = Notification.Status.OPEN


def wall_deadline(grace_from: datetime, grace: timedelta | None, set_for: datetime) -> datetime:
    return set_for if grace is None else grace_from + grace


def deadline(
    calendar: Calendar, grace_from: datetime, grace: timedelta | None, set_for: datetime
) -> tuple[datetime, str]:
    """The deadline in working time, and a note when it is not the wall-clock one. `set_for`
    is the instant a person gave (used when `grace` is None)."""
    wall = wall_deadline(grace_from, grace, set_for)
    try:
        if grace is None:
            # The working time the person gave, on the user's usual days and hours; days off
            # in between take some of it away, and the deadline moves by that much.
            usual = dataclasses.replace(calendar, days_off=frozenset(), public_holiday=_never)
            given = usual.working_between(grace_from, wall)
            if calendar.working_between(grace_from, wall) >= given:
                return wall, ""
            moved = max(wall, calendar.add(grace_from, given))
        else:
            moved = calendar.add(grace_from, grace)
    except NoWorkingTime:
        return wall, "No working time in the next three years: the wall-clock deadline stands."
    except ValueError:  # a negative grace, written around the admin's validation
        return wall, ""
    if moved == wall:
        return wall, ""
    note = f"Counted in working time: {_local(moved, calendar)}, not {_local(wall, calendar)}"
    days_off = _days_off(calendar, grace_from, moved)
    if days_off:
        note += f"; past the days off {days_off}"
    return moved, f"{note}."[:300]


def _never(day: date) -> bool:
    return False


def _local(at: datetime, calendar: Calendar) -> str:
    return f"{at.astimezone(calendar.zone):%a %d %b %H:%M}"


def _days_off(calendar: Calendar, start: datetime, end: datetime) -> str:
    """The working days lost to holidays and absences between two instants, as ranges."""
    day, last = start.astimezone(calendar.zone).date(), end.astimezone(calendar.zone).date()
    runs: list[list[date]] = []
    while day <= last:
        if day.isoweekday() in calendar.days and calendar.off(day):
            if runs and (day - runs[-1][1]).days <= 3 and _only_rest(calendar, runs[-1][1], day):
                runs[-1][1] = day
            else:
                runs.append([day, day])
        day += timedelta(days=1)
    return ", ".join(f"{a:%d %b}" if a == b else f"{a:%d %b}–{b:%d %b}" for a, b in runs[:5]) + (
        " …" if len(runs) > 5 else ""
    )


def _only_rest(calendar: Calendar, after: date, until: date) -> bool:
    """Only days not worked anyway between two days off (a weekend inside a fortnight away)."""
    day = after + timedelta(days=1)
    while day < until:
        if day.isoweekday() in calendar.days:
            return False
        day += timedelta(days=1)
    return True


def reschedule(notifications: QuerySet, now: datetime, company: WorkingCalendar | None = None):
    """Work out again the deadline (and the manager's copy time) of the open blocking
    notifications among `notifications`, BATCH users at a time; returns the rows changed.

    Each batch is one transaction that locks its users' rows first and reads their calendars
    after: a change saved meanwhile (an absence, whose own reschedule locks the same rows)
    is either seen here or made after this batch commits and applied by its own reschedule,
    never overwritten by a value read before it. Only rows whose values change are written."""
    company = company or WorkingCalendar.current()
    waiting = notifications.filter(status=OPEN, blocking=True).exclude(grace_from=None)
    user_ids = sorted(set(waiting.values_list("user_id", flat=True)))
    shares = dict(
        ReminderRule.objects.filter(manager_copy_at__gt=0).values_list("pk", "manager_copy_at")
    )
    changed = 0
    for start in range(0, len(user_ids), BATCH):
        with transaction.atomic():
            changed += _reschedule_batch(
                waiting.filter(user_id__in=user_ids[start : start + BATCH]), company, shares
            )
    return changed


COLUMNS = ("grace_deadline", "deadline_note", "escalate_at")


def _reschedule_batch(waiting: QuerySet, company: WorkingCalendar, shares: dict) -> int:
    rows = list(
        # NO KEY: the audit rows that refer to these (a lock-out, an unlock) need not wait.
        waiting.select_for_update(of=("self",), no_key=True)
        .order_by("pk")
        .values_list("pk", "user_id", "grace_from", "grace", "expires_at", "rule_id", *COLUMNS)
    )
    calendars: dict[int, Calendar] = {}
    if company.enabled and rows:
        users = User.objects.filter(pk__in={row[1] for row in rows}).select_related("team")
        calendars = calendars_for(users, min(row[2] for row in rows), company)
    worked_out: dict[tuple, tuple] = {}  # one answer per user, grace and rule
    updates = []
    for pk, user_id, grace_from, grace, expires_at, rule_id, *current in rows:
        key = (user_id, grace_from, grace, expires_at if grace is None else None, rule_id)
        if key not in worked_out:
            worked_out[key] = _work_out(calendars.get(user_id), key, shares.get(rule_id))
        wanted = worked_out[key]
        if tuple(current) != wanted:
            updates.append((pk, *wanted))
    return update_rows(Notification, COLUMNS, updates)


def _work_out(calendar: Calendar | None, key: tuple, share: int | None) -> tuple:
    _, grace_from, grace, set_for, _ = key
    if calendar is None:
        due, note = wall_deadline(grace_from, grace, set_for), ""
    else:
        due, note = deadline(calendar, grace_from, grace, set_for)
    escalate = None
    if grace is not None and share:
        escalate = _share(calendar, grace_from, grace * share / 100)
    return due, note, escalate


def _share(calendar: Calendar | None, grace_from: datetime, part: timedelta) -> datetime:
    if calendar is None:
        return grace_from + part
    try:
        return calendar.add(grace_from, part)
    except (NoWorkingTime, ValueError):
        return grace_from + part


def reschedule_users(users: QuerySet | list[int], now: datetime) -> int:
    """After a change to what these users' calendars hold."""
    return reschedule(Notification.objects.filter(user__in=users), now)
