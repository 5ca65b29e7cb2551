"""Changes users make to sales objects. Each tells the rest of Vigil through
crm.signals.object_changed, inside the same transaction."""

from datetime import date, datetime

from django.db import transaction
from django.db.models import F

from crm.models import Opportunity, Task, User
from crm.signals import object_changed


class NotAllowed(Exception):
    pass


def _changed(kind: str, object_id: int, actor: User, at: datetime) -> None:
    object_changed.send(sender=None, kind=kind, object_id=object_id, actor=actor, at=at)


@transaction.atomic
def complete_task(task: Task, actor: User, now: datetime) -> Task:
    if task.status == Task.Status.OPEN:
        task.status, task.completed_at = Task.Status.DONE, now
        task.save(update_fields=["status", "completed_at"])
    _changed("task", task.pk, actor, now)
    return task


@transaction.atomic
def update_opportunity(
    opportunity: Opportunity,
    actor: User,
    now: datetime,
    *,
    stage: str | None = None,
    expected_close: date | None = None,
) -> Opportunity:
    """Move an opportunity on; any update (even with nothing changed) counts as touching it."""
    if stage is not None:
        if stage not in Opportunity.Stage.values:
            raise NotAllowed(f"unknown stage {stage!r}")
        opportunity.stage = stage
    if expected_close is not None:
        opportunity.expected_close = expected_close
    opportunity.save(update_fields=["stage", "expected_close", "updated_at"])
    _changed("opportunity", opportunity.pk, actor, now)
    return opportunity


def end_all_sessions(user: User) -> None:
    """Log the user out everywhere: every stored session stops matching their auth hash."""
    User.objects.filter(pk=user.pk).update(session_epoch=F("session_epoch") + 1)
    user.refresh_from_db(fields=["session_epoch"])
