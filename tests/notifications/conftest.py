from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.jobs import notify_expiring
from tests.factories import ReminderRuleFactory, TaskFactory, TeamFactory, UserFactory


@pytest.fixture
def north(db):
    return TeamFactory(name="North")


@pytest.fixture
def boss(north):
    return UserFactory(
        username="boss", first_name="Bea", last_name="Boss", role="manager", team=north
    )


@pytest.fixture
def rita(boss, north):
    return UserFactory(username="rita", first_name="Rita", role="rep", team=north, manager=boss)


@pytest.fixture
def compliance_rule(db):
    return ReminderRuleFactory(
        name="Task overdue",
        object_kind="task",
        lead_time=timedelta(0),
        blocking=True,
        grace_period=timedelta(hours=24),
        notify_manager=True,
    )


@pytest.fixture
def overdue_task(rita, compliance_rule):
    """Rita's task, due an hour ago; the daily job has just made it a blocking notification."""
    task = TaskFactory(
        owner=rita, title="Call Acme back", due_at=timezone.now() - timedelta(hours=1)
    )
    notify_expiring(timezone.now())
    return task
