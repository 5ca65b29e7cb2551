"""Deadlines follow the calendars they are counted in (notifications.deadlines).

A change to one person's or one team's calendar (an absence; a user's hours, zone or team; a
team's shift, holiday region or days off) works out their open deadlines again as soon as the
transaction that made it commits (after it: a transaction that saves several, the admin's
"delete selected", never holds some users' rows while waiting for others'). A change to
everyone's (the company's calendar switched on or
off or given other hours, a company-wide day off, a team deleted) queues the job
`blocking_deadlines` once that transaction commits: thousands of deadlines are no work for an
admin's request. Saves that change nothing a calendar is made of move nothing."""

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone

from crm.models import Absence, Holiday, Team, User, WorkingCalendar
from crm.tasks import run_job_now
from notifications import deadlines
from notifications.models import Notification

JOB = "blocking_deadlines"
# What a calendar is made of, for each model whose saves may change one.
CALENDAR_FIELDS = {
    User: {"time_zone", "work_days", "day_starts", "day_ends", "team_id"},
    Team: {"work_days", "day_starts", "day_ends", "holiday_country", "holiday_subdivision"},
    Absence: {"user_id", "first_day", "last_day"},
    Holiday: {"date", "team_id"},
    WorkingCalendar: {
        "enabled",
        "work_days",
        "day_starts",
        "day_ends",
        "holiday_country",
        "holiday_subdivision",
    },
}


def _enabled() -> bool:
    return WorkingCalendar.read().enabled


def _with_deadlines(users: QuerySet) -> QuerySet:
    """Only users with an open blocking notification: everyone else has nothing to move."""
    waiting = Notification.objects.filter(
        user=OuterRef("pk"), status=Notification.Status.OPEN, blocking=True
    )
    return users.filter(Exists(waiting))


def _rework(users: QuerySet | set[int]) -> None:
    if isinstance(users, QuerySet):
        users = set(users.values_list("pk", flat=True))
    ids = sorted(users)
    transaction.on_commit(lambda: deadlines.reschedule_users(ids, timezone.now()))


def _rework_everyone() -> None:
    run_job_now.delay_on_commit(JOB, timezone.now().isoformat())  # type: ignore[attr-defined] # Celery's Django task


def remember_calendar(sender, instance, raw: bool = False, **kwargs) -> None:
    """The calendar fields as they were, for post_save to see what changed (not for users:
    their saves are many, and update_fields tells)."""
    if raw or instance.pk is None:
        return
    fields = CALENDAR_FIELDS[sender]
    instance._calendar_before = sender.objects.filter(pk=instance.pk).values(*fields).first()


for model in (Team, Absence, Holiday, WorkingCalendar):
    pre_save.connect(remember_calendar, sender=model)


def _before(instance) -> dict | None:
    return getattr(instance, "_calendar_before", None)


def _changed(instance, fields: set[str], signal_kwargs: dict) -> bool:
    """Whether a save changed a calendar field; a delete always does."""
    if "created" not in signal_kwargs:  # post_delete
        return True
    before = _before(instance)
    return before is None or any(before[name] != getattr(instance, name) for name in fields)


@receiver([post_save, post_delete], sender=Absence)
def absence_changed(sender, instance: Absence, raw: bool = False, **kwargs) -> None:
    if raw or not _changed(instance, CALENDAR_FIELDS[Absence], kwargs) or not _enabled():
        return
    before = _before(instance)
    _rework({instance.user_id, before["user_id"] if before else instance.user_id})


@receiver([post_save, post_delete], sender=Holiday)
def holiday_changed(sender, instance: Holiday, raw: bool = False, **kwargs) -> None:
    if raw or not _changed(instance, CALENDAR_FIELDS[Holiday], kwargs) or not _enabled():
        return
    before = _before(instance)
    teams = {instance.team_id, before["team_id"] if before else instance.team_id}
    if None in teams:
        _rework_everyone()
    else:
        _rework(_with_deadlines(User.objects.filter(team__in=teams)))


@receiver(post_save, sender=Team)
def team_changed(sender, instance: Team, created: bool, raw: bool = False, **kwargs) -> None:
    changed = _changed(instance, CALENDAR_FIELDS[Team], {"created": created})
    if raw or created or not changed or not _enabled():
        return
    _rework(_with_deadlines(User.objects.filter(team=instance)))


@receiver(post_delete, sender=Team)
def team_deleted(sender, instance: Team, **kwargs) -> None:
    # Its people are in no team now, and its days off are gone: their ids are not at hand.
    if _enabled():
        _rework_everyone()


@receiver(post_save, sender=User)
def user_changed(
    sender, instance: User, created: bool, update_fields=None, raw: bool = False, **kwargs
) -> None:
    names = {"team" if name == "team_id" else name for name in update_fields or ()}
    if raw or created:
        return
    if update_fields is not None and not names & {"team", *CALENDAR_FIELDS[User]}:
        return  # a login's last_login, a session's epoch
    if _enabled():
        _rework({instance.pk})


@receiver(post_save, sender=WorkingCalendar)
def calendar_changed(
    sender, instance: WorkingCalendar, created: bool, raw: bool = False, **kwargs
) -> None:
    if raw:
        return
    # Switched on or off, or other hours while on: every open deadline, counted the way it
    # now says.
    before = _before(instance)
    switched = before is not None and before["enabled"] != instance.enabled
    hours = _changed(instance, CALENDAR_FIELDS[WorkingCalendar], {"created": created})
    if switched or (instance.enabled and (created or hours)):
        _rework_everyone()
