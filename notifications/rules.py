"""Which objects a reminder rule fires for at a moment, as one queryset, and the date each
notification is about. Used by the daily job (in bulk) and when one object changes."""

from datetime import datetime, timedelta

from django.db.models import F, QuerySet
from django.db.models.expressions import Combinable
from django.utils import timezone

from notifications.models import ReminderRule
from notifications.objects import TYPES, ObjectType


def matching(rule: ReminderRule, as_of: datetime) -> tuple[QuerySet, Combinable]:
    """(objects the rule fires for at `as_of`, the expiry date of each as an expression)."""
    object_type = TYPES[rule.object_kind]
    objects = object_type.open(as_of)
    if rule.statuses and object_type.status_field:
        objects = objects.filter(**{f"{object_type.status_field}__in": rule.statuses})
    if rule.trigger == ReminderRule.Trigger.UNTOUCHED:
        untouched = timedelta(days=rule.untouched_days)
        objects = objects.filter(updated_at__lte=as_of + rule.lead_time - untouched)
        return objects, F("updated_at") + untouched
    return objects.filter(**_due_by(object_type, as_of + rule.lead_time)), object_type.expires_at


def _due_by(object_type: ObjectType, horizon: datetime) -> dict:
    if object_type.date_only:  # a calendar date: compare with the company's local date
        return {f"{object_type.date_field}__lte": timezone.localdate(horizon)}
    return {f"{object_type.date_field}__lte": horizon}
