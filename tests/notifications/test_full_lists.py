"""The full, paginated, filterable lists behind the dashboard's cards, with the dashboard's
visibility: a rep their own records, a manager the team's, nobody another team's."""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications import services
from tests.clients import logged_in
from tests.factories import (
    DispatchFactory,
    EventFactory,
    OpportunityFactory,
    TaskFactory,
    TeamFactory,
    UserFactory,
)


@pytest.fixture
def tom(rita):
    return UserFactory(username="tom", first_name="Tom", last_name="Teammate", team=rita.team)


@pytest.fixture
def sam(db):
    return UserFactory(username="sam", role="rep", team=TeamFactory(name="South"))


def names(page) -> list[str]:
    return [row["name"] for row in page.context["rows"]]


def one_of_each(owner, label):
    now = timezone.now()
    TaskFactory(owner=owner, title=f"{label} task", due_at=now - timedelta(hours=1))
    OpportunityFactory(owner=owner, name=f"{label} deal")
    EventFactory(owner=owner, title=f"{label} meeting")
    DispatchFactory(owner=owner, team=owner.team, title=f"{label} dispatch")


@pytest.mark.parametrize(
    ("url", "suffix"),
    [
        ("/tasks/", "task"),
        ("/opportunities/", "deal"),
        ("/events/", "meeting"),
    ],
)
def test_a_rep_sees_their_own_records_and_a_manager_the_teams(url, suffix, rita, tom, boss, sam):
    for owner in (rita, tom, sam):
        one_of_each(owner, owner.username)

    assert names(logged_in(rita).get(url)) == [f"rita {suffix}"]
    assert sorted(names(logged_in(boss).get(url))) == [f"rita {suffix}", f"tom {suffix}"]
    assert names(logged_in(sam).get(url)) == [f"sam {suffix}"]


def test_dispatches_are_the_teams_as_on_the_dashboard(rita, tom, sam):
    for owner in (rita, tom, sam):
        one_of_each(owner, owner.username)

    assert sorted(names(logged_in(rita).get("/dispatches/"))) == ["rita dispatch", "tom dispatch"]


def test_a_manager_filters_by_owner_and_a_rep_cannot(rita, tom, boss):
    one_of_each(rita, "rita")
    one_of_each(tom, "tom")

    assert names(logged_in(boss).get(f"/tasks/?owner={tom.pk}")) == ["tom task"]
    assert names(logged_in(rita).get(f"/tasks/?owner={tom.pk}")) == ["rita task"]
    page = logged_in(boss).get("/tasks/")
    assert "Tom Teammate" in page.content.decode()  # full names, not usernames


def test_when_and_status_filters(rita):
    now = timezone.now()
    TaskFactory(owner=rita, title="last week", due_at=now - timedelta(days=7))
    TaskFactory(owner=rita, title="next week", due_at=now + timedelta(days=7))
    TaskFactory(owner=rita, title="done", due_at=now - timedelta(days=3), status="done")
    client = logged_in(rita)

    assert names(client.get("/tasks/?when=overdue")) == ["last week"]
    assert names(client.get("/tasks/?when=upcoming")) == ["next week"]
    assert names(client.get("/tasks/?status=done")) == ["done"]
    assert names(client.get("/tasks/?status=all&when=overdue")) == ["done", "last week"]


def test_a_list_is_paginated_and_its_links_keep_the_filters(rita):
    now = timezone.now()
    for i in range(60):
        TaskFactory(owner=rita, title=f"overdue {i}", due_at=now - timedelta(days=1, minutes=i))
    client = logged_in(rita)

    first = client.get("/tasks/?when=due")
    second = client.get("/tasks/?when=due&page=2")

    assert (first.context["page"].paginator.count, len(first.context["rows"])) == (60, 50)
    assert names(first)[0] == "overdue 0"  # most recent first
    assert 'href="?when=due&amp;page=2"' in first.content.decode()
    assert names(second) == [f"overdue {i}" for i in range(50, 60)]


@pytest.mark.parametrize("rows", [1, 30])
def test_a_full_list_costs_the_same_queries_whatever_the_data(
    rows, boss, rita, django_assert_num_queries
):
    for i in range(rows):
        one_of_each(rita, f"rita {i}")
    client = logged_in(boss)

    # session, user, gate, count, page of rows, the owner filter's people
    with django_assert_num_queries(6):
        assert client.get("/tasks/").status_code == 200


@pytest.mark.parametrize("rows", [1, 60])
def test_the_notification_list_costs_the_same_queries_whatever_the_data(
    rows, rita, django_assert_num_queries
):
    opportunity = OpportunityFactory(owner=rita)
    now = timezone.now()
    for i in range(rows):
        services.add_reminder(
            rita, "opportunity", opportunity.pk, now - timedelta(hours=i), "", now
        )
    client = logged_in(rita)

    # session, user, gate, count, page of rows, "is anything blocking?", whom rita covers for
    with django_assert_num_queries(7):
        assert client.get("/notifications/").status_code == 200


def test_the_notification_list_is_paginated(rita):
    opportunity = OpportunityFactory(owner=rita)
    now = timezone.now()
    for i in range(55):
        services.add_reminder(
            rita, "opportunity", opportunity.pk, now - timedelta(minutes=i), "", now
        )

    page = logged_in(rita).get("/notifications/?page=2")

    assert page.context["page"].paginator.count == 55
    assert len(page.context["notifications"]) == 5


def test_opportunities_closing_today_come_before_overdue_ones(rita):
    today = timezone.localdate()
    OpportunityFactory(owner=rita, name="next month", expected_close=today + timedelta(30))
    OpportunityFactory(owner=rita, name="last month", expected_close=today - timedelta(30))
    OpportunityFactory(owner=rita, name="last week", expected_close=today - timedelta(7))
    OpportunityFactory(owner=rita, name="today", expected_close=today)

    page = logged_in(rita).get("/opportunities/")

    assert names(page) == ["today", "last week", "last month", "next month"]
