from datetime import datetime

from django.db.models import BooleanField, CharField, DateTimeField, Value
from django.db.models.functions import Cast, Concat

from crm.registry import Counts, job
from crm.sql import insert_from_select
from notifications.models import Notification, ReminderRule
from notifications.objects import TYPES
from notifications.rules import matching
from notifications.services import close_done


@job("notifications_daily", schedule="0 6 * * *")
def notify_expiring(as_of: datetime, *, dry_run: bool = False) -> Counts:
    """Notify about tasks, opportunities, events and invoices about to expire or expired."""
    created = 0
    rules = list(ReminderRule.objects.filter(active=True))
    for rule in rules:
        created += notify_for_rule(rule, as_of)
    return {"rules": len(rules), "created": created, "closed": close_done(as_of)}


def notify_for_rule(rule: ReminderRule, as_of: datetime) -> int:
    """One INSERT … SELECT per kind of recipient the rule names."""
    object_type = TYPES[rule.object_kind]
    objects, expires_at = matching(rule, as_of)
    deadline = as_of + rule.grace_period if rule.blocking else None
    columns = {
        "source": Value(f"rule:{rule.pk}"),
        "rule": Value(rule.pk),
        "object_kind": Value(rule.object_kind),
        "object_id": "pk",
        "title": Concat(Value(f"{rule.name}: "), object_type.name, output_field=CharField()),
        "note": Value(""),
        "expires_at": expires_at,
        "visible_from": Value(as_of, output_field=DateTimeField()),
        "status": Value(Notification.Status.OPEN),
        "created_at": Value(as_of, output_field=DateTimeField()),
    }
    recipients = [
        path
        for path, wanted in (
            (object_type.owner, rule.notify_owner),
            (object_type.manager, rule.notify_manager),
            (object_type.account_manager, rule.notify_account_manager),
        )
        if wanted
    ]
    created = 0
    for path in dict.fromkeys(recipients):
        # Only the owner is blocked; managers and account managers get a plain copy.
        blocks = rule.blocking and path == object_type.owner
        created += insert_from_select(
            Notification,
            {
                "user": path,
                "blocking": Value(blocks, output_field=BooleanField()),
                "grace_deadline": Cast(
                    Value(deadline if blocks else None, output_field=DateTimeField()),
                    DateTimeField(),
                ),
                **columns,
            },
            objects.filter(**{f"{path}__isnull": False}),
        )
    return created
