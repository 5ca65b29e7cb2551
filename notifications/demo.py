"""Demo reminder rules, today's notifications, one rep with an open blocking notification and
one locked out (their grace deadline passed), for `manage.py seed_demo`."""

from datetime import timedelta

from crm.models import Opportunity, User
from notifications.jobs import notify_expiring
from notifications.models import AlertSettings, ReminderRule

RULES = [
    dict(name="Task due within a day", object_kind="task", lead_time=timedelta(days=1)),
    dict(
        name="Opportunity closing within a week",
        object_kind="opportunity",
        lead_time=timedelta(days=7),
        notify_manager=True,
    ),
    dict(name="Event tomorrow", object_kind="event", lead_time=timedelta(days=1)),
    dict(name="Invoice due within 3 days", object_kind="invoice", lead_time=timedelta(days=3)),
    dict(
        name="Opportunity untouched for 30 days",
        object_kind="opportunity",
        trigger=ReminderRule.Trigger.UNTOUCHED,
        untouched_days=30,
        lead_time=timedelta(0),
        blocking=True,
        grace_period=timedelta(hours=24),
        notify_manager=True,
    ),
]


def seed(demo) -> None:
    if ReminderRule.objects.exists():
        demo.logins += _logins()
        return
    for rule in RULES:
        ReminderRule.objects.create(**rule)
    settings = AlertSettings.current()
    settings.recipients.set(User.objects.filter(username__in=["admin", "manager1"]))
    # rep12 let an opportunity go stale a month ago: blocked until they touch it (24 h grace).
    # rep13 did so too, two days ago already: their grace deadline passed, they are locked out.
    # rep21, on leave this week, too: rep22 stands in and sees it under "Covering for".
    for username, days_ago in (("rep12", 0), ("rep13", 2), ("rep21", 0)):
        stale = (
            Opportunity.objects.filter(owner__username=username, stage__in=Opportunity.OPEN_STAGES)
            .order_by("pk")
            .first()
        )
        Opportunity.objects.filter(pk=stale.pk).update(
            updated_at=demo.now - timedelta(days=31 + days_ago)
        )
        notify_expiring(demo.now - timedelta(days=days_ago))
    notify_expiring(demo.now)
    demo.logins += _logins()


def _logins() -> list[tuple[str, str]]:
    return [
        ("rep12", "has an open BLOCKING notification (a stale opportunity)"),
        ("rep13", "LOCKED OUT (grace deadline passed); manager1 can unlock"),
        ("rep22", "stands in for rep21 (on leave): rep21's blocking item under Covering for"),
    ]
