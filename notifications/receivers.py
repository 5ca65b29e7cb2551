"""Deadlines follow the calendars they are counted in: a change to an absence, a day off, a
user's or a team's hours, or the company's calendar works the affected users' open deadlines
out again (notifications.deadlines), in the transaction that made the change."""

from django.db.models import Exists, OuterRef
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from crm.models import Absence, Holiday, Team, User, WorkingCalendar
from notifications import deadlines
from notifications.models import Notification

# What a user's calendar is made of; a save that names none of them (a login's last_login)
# moves nothing.
CALENDAR_FIELDS = {"time_zone", "work_days", "day_starts", "day_ends", "team"}


def _with_deadlines(users):
    """Only users with an open blocking notification: everyone else has nothing to move."""
    waiting = Notification.objects.filter(
        user=OuterRef("pk"), status=Notification.Status.OPEN, blocking=True
    )
    return users.filter(Exists(waiting))


def _enabled() -> bool:
    return WorkingCalendar.objects.filter(enabled=True).exists()


@receiver([post_save, post_delete], sender=Absence)
def absence_changed(sender, instance: Absence, **kwargs) -> None:
    if _enabled():
        deadlines.reschedule_users([instance.user_id], timezone.now())


@receiver([post_save, post_delete], sender=Holiday)
def holiday_changed(sender, instance: Holiday, **kwargs) -> None:
    if _enabled():
        users = (
            User.objects.all()
            if instance.team_id is None
            else User.objects.filter(team_id=instance.team_id)
        )
        deadlines.reschedule_users(_with_deadlines(users), timezone.now())


@receiver(post_save, sender=Team)
def team_changed(sender, instance: Team, update_fields=None, **kwargs) -> None:
    if _enabled():
        users = User.objects.filter(team=instance)
        deadlines.reschedule_users(_with_deadlines(users), timezone.now())


@receiver(post_save, sender=User)
def user_changed(sender, instance: User, created: bool, update_fields=None, **kwargs) -> None:
    if created or (update_fields is not None and not CALENDAR_FIELDS & set(update_fields)):
        return
    if _enabled():
        deadlines.reschedule_users([instance.pk], timezone.now())


@receiver(post_save, sender=WorkingCalendar)
def calendar_changed(sender, instance: WorkingCalendar, **kwargs) -> None:
    # Switched on or off, or new hours: every open deadline, counted the way it now says.
    deadlines.reschedule(Notification.objects.all(), timezone.now(), instance)
