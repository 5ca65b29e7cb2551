"""The dashboard's SQL is built once per kind of user with stand-in values and run with each
request's own (notifications.dashboard): what it reads must be exactly what the ORM reads,
for every kind of user, at any moment, in any time zone."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from notifications import dashboard, services
from tests.factories import (
    DispatchFactory,
    EventFactory,
    OpportunityFactory,
    TaskFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the compiled path is PostgreSQL's"
)


def fill(owner, now):
    for hours in (-50, -30, -3, 2, 5, 30):
        at = now + timedelta(hours=hours)
        task = TaskFactory(owner=owner, title=f"task {hours}", due_at=at)
        deal = OpportunityFactory(owner=owner, name=f"deal {hours}", amount=100 + hours)
        EventFactory(owner=owner, start_at=at, end_at=at + timedelta(hours=1))
        DispatchFactory(owner=owner, team=owner.team, due_at=at)
        services.add_reminder(owner, "task", task.pk, at, "", at - timedelta(days=3))
        services.add_reminder(owner, "opportunity", deal.pk, at, "", at - timedelta(days=3))


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kathmandu"])
def test_the_compiled_sql_reads_what_the_orm_reads(rita, boss, zone):
    admin = UserFactory(username="ada", role="admin", team=None)
    loner = UserFactory(username="lone", role="rep", team=None)
    south = UserFactory(username="sam", role="rep", team=TeamFactory(name="South"))
    now = timezone.now()
    for owner in (rita, boss, south):
        fill(owner, now)

    with timezone.override(zone), time_machine.travel(now + timedelta(minutes=7), tick=False):
        at = dashboard.Moments.at(timezone.now())
        for user in (rita, boss, admin, loner, south):
            compiled = dashboard._run_compiled(user, at)
            orm = dashboard._run_orm(user, at)

            assert compiled.keys() == orm.keys()
            for name in orm:
                assert _rows(compiled[name]) == _rows(orm[name]), (user, name)
            assert compiled["tasks"] or user is loner  # the comparison saw real rows


def _rows(rows):
    """The rows as comparable values, whatever order a UNION returned them in."""
    return sorted(tuple(sorted((k, _plain(v)) for k, v in row.items())) for row in rows)


def _plain(value) -> str:
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else repr(value)
