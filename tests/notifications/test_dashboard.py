"""The dashboard a rep lands on after login, and what each role may see."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.utils import timezone

from crm.models import Opportunity
from notifications.models import Notification
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
def south_rep(db):
    return UserFactory(username="sam", role="rep", team=TeamFactory(name="South"))


def fill(owner, n):
    now = timezone.now()
    for i in range(n):
        TaskFactory(
            owner=owner, title=f"{owner.username} task {i}", due_at=now - timedelta(hours=i)
        )
        OpportunityFactory(owner=owner, stage="proposal", amount=1000 + i)
        EventFactory(
            owner=owner, start_at=now + timedelta(hours=i + 1), end_at=now + timedelta(hours=i + 2)
        )
        DispatchFactory(owner=owner, team=owner.team, due_at=now + timedelta(hours=i))


@pytest.mark.django_db
def test_login_lands_on_the_dashboard(rita):
    client = Client()
    response = client.post("/login/", {"username": "rita", "password": "pw-for-tests"})

    assert response["Location"] == "/"
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_a_rep_sees_their_own_work_only(rita, boss, south_rep):
    fill(rita, 2)
    fill(boss, 1)
    fill(south_rep, 1)

    page = logged_in(rita).get("/")

    assert {t["owner_id"] for t in page.context["tasks"].rows} == {rita.pk}
    assert {e["owner_id"] for e in page.context["events"].rows} == {rita.pk}
    assert {d["team_id"] for d in page.context["dispatches"].rows} == {rita.team_id}
    proposal = next(b for b in page.context["pipeline"]["bars"] if b["label"] == "Proposal")
    assert proposal["count"] == 2


@pytest.mark.django_db
def test_a_manager_sees_their_team(rita, boss, south_rep):
    fill(rita, 2)
    fill(south_rep, 1)

    page = logged_in(boss).get("/")

    assert {t["owner_id"] for t in page.context["tasks"].rows} == {rita.pk}
    assert "rita task 0" in page.content.decode()
    assert "sam task" not in page.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("rows", [1, 30])
def test_the_dashboard_costs_the_same_queries_whatever_the_data(
    rita, rows, django_assert_num_queries
):
    fill(rita, rows)
    client = logged_in(rita)

    # Session, user, gate; the cards' totals; notifications, tasks, events, dispatches; the
    # pipeline and the trend; who is away today. SQLite cannot order inside a UNION: it asks
    # for each of the notifications' four urgency buckets and the tasks' two on its own.
    expected = 11 if connection.vendor == "postgresql" else 15
    with django_assert_num_queries(expected):
        assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_a_rep_never_sees_another_teams_records_by_url(rita, south_rep):
    task = TaskFactory(owner=south_rep)
    opportunity = OpportunityFactory(owner=south_rep)
    event = EventFactory(owner=south_rep)
    dispatch = DispatchFactory(owner=south_rep, team=south_rep.team)
    client = logged_in(rita)

    for url in (
        f"/tasks/{task.pk}/",
        f"/opportunities/{opportunity.pk}/",
        f"/events/{event.pk}/",
        f"/dispatches/{dispatch.pk}/",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/tasks/{task.pk}/complete").status_code == 404
    assert logged_in(south_rep).get(f"/tasks/{task.pk}/").status_code == 200


@pytest.mark.django_db
def test_a_teammate_can_look_but_only_the_owner_or_manager_can_complete(rita, boss):
    task = TaskFactory(owner=rita)
    teammate = UserFactory(username="tom", role="rep", team=rita.team)

    assert logged_in(teammate).get(f"/tasks/{task.pk}/").status_code == 200
    assert logged_in(teammate).post(f"/tasks/{task.pk}/complete").status_code == 403
    assert logged_in(boss).post(f"/tasks/{task.pk}/complete").status_code == 302


@pytest.mark.django_db
def test_a_users_reminder_appears_on_its_date_and_can_be_dismissed(rita):
    opportunity = OpportunityFactory(owner=rita, name="Big deal")
    client = logged_in(rita)
    when = timezone.localtime() + timedelta(days=2)

    client.post(
        "/notifications/remind",
        {
            "kind": "opportunity",
            "object_id": opportunity.pk,
            "remind_at": when.strftime("%Y-%m-%dT%H:%M"),
            "note": "Ask about the budget",
        },
    )

    assert client.get("/").context["notifications"].rows == []
    with time_machine.travel(when + timedelta(minutes=1)):
        [reminder] = client.get("/").context["notifications"].rows
        assert (reminder["title"], reminder["note"]) == (
            "Reminder: Big deal",
            "Ask about the budget",
        )
        client.post(f"/notifications/{reminder['pk']}/dismiss")
        assert client.get("/").context["notifications"].rows == []


@pytest.mark.django_db
def test_a_reminder_on_someone_elses_record_is_refused(rita, south_rep):
    opportunity = OpportunityFactory(owner=south_rep)

    response = logged_in(rita).post(
        "/notifications/remind",
        {"kind": "opportunity", "object_id": opportunity.pk, "remind_at": "2026-12-01T09:00"},
    )

    assert response.status_code == 404
    assert not Notification.objects.exists()


@pytest.mark.django_db
def test_touching_a_stale_opportunity_resolves_its_blocking_notification(rita):
    from notifications.jobs import notify_expiring
    from tests.factories import ReminderRuleFactory

    ReminderRuleFactory(
        object_kind="opportunity",
        trigger="untouched",
        untouched_days=10,
        lead_time=timedelta(0),
        blocking=True,
        notify_manager=True,
    )
    stale = OpportunityFactory(owner=rita, stage="proposal")
    Opportunity.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - timedelta(days=11))
    notify_expiring(timezone.now())
    client = logged_in(rita)
    assert client.get("/")["Location"] == "/notifications/?blocked=1"
    assert Notification.objects.get(user=rita.manager).blocking is False  # a copy for the boss

    client.post(f"/opportunities/{stale.pk}/update", {"stage": "negotiation"})

    assert client.get("/").status_code == 200
    assert set(Notification.objects.values_list("status", flat=True)) == {"resolved"}


def test_money_has_the_currency_symbol_and_thousands_separators(settings):
    from decimal import Decimal

    from notifications.charts import money

    assert money(Decimal("353300")) == "€353,300.00"
    assert money(Decimal("-1234.5"), "USD") == "-$1,234.50"
    assert money(Decimal("1000000"), "SEK", places=0) == "SEK 1,000,000"
    settings.VIGIL_CURRENCY = "GBP"
    assert money(Decimal("99.999")) == "£100.00"


@pytest.mark.django_db
def test_the_charts_show_values_totals_and_a_text_description(rita):
    OpportunityFactory(owner=rita, stage="proposal", amount=300000)
    OpportunityFactory(owner=rita, stage="proposal", amount=53300)
    OpportunityFactory(owner=rita, stage="negotiation", amount=1000)
    TaskFactory(owner=rita, due_at=timezone.now() - timedelta(days=1))

    html = logged_in(rita).get("/").content.decode()

    assert '<title id="pipeline-title">Open opportunities by stage: 3 worth €354,300.00' in html
    assert "Proposal: 2 worth €353,300." in html  # the <desc>
    assert '<text x="203" y="12" text-anchor="middle" class="value">€353,300</text>' in html
    assert "<th>Stage</th>" in html and "<th>Total</th>" in html
    assert "over the last 14 days: 1 in all" in html
