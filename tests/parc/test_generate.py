"""parc_generate: every due visit of every active agreement gets an opportunity, an inspection
task, a follow-up task and a dispatch, exactly once."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection

from crm import runner
from crm.models import Dispatch, Opportunity, Task
from parc.jobs import generate_parc_visits
from parc.models import Agreement, ParcSettings, ParcVisit
from parc.visits import add_working_days
from tests.factories import AccountFactory, UserFactory
from tests.parc.conftest import AgreementFactory
from tests.processes import at_once

MONDAY = datetime(2027, 1, 4, 5, 0, tzinfo=UTC)  # the scheduled run, 05:00 on a Monday


def records():
    return {
        "visits": ParcVisit.objects.count(),
        "opportunities": Opportunity.objects.count(),
        "tasks": Task.objects.count(),
        "dispatches": Dispatch.objects.count(),
    }


@pytest.mark.django_db
def test_a_due_visit_gets_its_four_records(agreement, settings):
    settings.TIME_ZONE = "Europe/Madrid"
    agreement.visit_time = time(10, 30)
    agreement.follow_up_working_days = 3
    agreement.inspection_offset_days = 1
    agreement.save()

    counts = generate_parc_visits(MONDAY)

    assert counts["visits"] == 1 and counts["opportunities"] == 1
    assert counts["tasks"] == 2 and counts["dispatches"] == 1 and counts["late"] == 0
    visit = ParcVisit.objects.get()
    madrid = ZoneInfo("Europe/Madrid")
    assert visit.visit_date == date(2027, 1, 5) and not visit.late
    manager = agreement.account.account_manager
    opportunity = visit.opportunity
    assert (opportunity.account, opportunity.owner) == (agreement.account, manager)
    assert opportunity.name == f"PARC visit {agreement.account.name} 2027-01-05"
    assert opportunity.amount == agreement.opportunity_amount
    assert (visit.inspection.kind, visit.inspection.owner) == ("inspection", manager)
    assert visit.inspection.due_at == datetime(2027, 1, 6, 10, 30, tzinfo=madrid)
    assert visit.inspection.opportunity == opportunity
    assert visit.follow_up.kind == "follow_up"
    assert visit.follow_up.due_at == datetime(2027, 1, 8, 10, 30, tzinfo=madrid)  # Tue + 3 wd
    assert visit.dispatch.team == agreement.visiting_team
    assert visit.dispatch.scheduled_at == datetime(2027, 1, 5, 10, 30, tzinfo=madrid)
    assert visit.dispatch.due_at == datetime(2027, 1, 5, 12, 30, tzinfo=madrid)


@pytest.mark.django_db
def test_a_re_run_of_the_same_week_creates_nothing(agreement):
    generate_parc_visits(MONDAY)
    before = records()

    counts = generate_parc_visits(MONDAY)
    later = generate_parc_visits(MONDAY + timedelta(hours=3))

    assert counts["visits"] == later["visits"] == 0
    assert records() == before == {"visits": 1, "opportunities": 1, "tasks": 2, "dispatches": 1}


@pytest.mark.django_db
def test_the_horizon_says_how_far_ahead(agreement):
    settings = ParcSettings.current()
    settings.horizon_days = 21
    settings.save()

    generate_parc_visits(MONDAY)

    assert list(ParcVisit.objects.values_list("visit_date", flat=True).order_by("visit_date")) == [
        date(2027, 1, 5),
        date(2027, 1, 12),
        date(2027, 1, 19),
    ]


@pytest.mark.django_db
def test_three_missed_weeks_are_generated_late_never_skipped(agreement):
    generate_parc_visits(MONDAY)

    counts = generate_parc_visits(MONDAY + timedelta(weeks=4))  # down for three Mondays

    assert counts["visits"] == 4 and counts["late"] == 3
    late = ParcVisit.objects.filter(late=True).values_list("visit_date", flat=True)
    assert sorted(late) == [date(2027, 1, 12), date(2027, 1, 19), date(2027, 1, 26)]
    assert ParcVisit.objects.get(visit_date=date(2027, 2, 2)).late is False


@pytest.mark.django_db
def test_an_ended_or_deactivated_agreement_generates_nothing_more(agreement):
    ended = AgreementFactory(account=AccountFactory(account_manager=agreement.manager))
    generate_parc_visits(MONDAY)
    ended.end_date = date(2027, 1, 10)
    ended.save()
    agreement.active = False
    agreement.save()

    counts = generate_parc_visits(MONDAY + timedelta(weeks=1))

    assert counts["visits"] == 0
    assert ParcVisit.objects.count() == 2


@pytest.mark.django_db
def test_a_changed_plan_applies_to_visits_not_yet_generated(agreement):
    generate_parc_visits(MONDAY)  # Tuesday 5 January
    agreement.plan = "FREQ=WEEKLY;BYDAY=FR"
    agreement.save()

    generate_parc_visits(MONDAY + timedelta(weeks=1))

    days = sorted(ParcVisit.objects.values_list("visit_date", flat=True))
    assert days == [date(2027, 1, 5), date(2027, 1, 8), date(2027, 1, 15)]


@pytest.mark.django_db
def test_a_dry_run_reports_what_it_would_create_and_writes_nothing(agreement):
    run = runner.run_job("parc_generate", MONDAY, dry_run=True)

    assert run.counts["visits"] == 1 and run.counts["summaries"] == 1
    assert records() == {"visits": 0, "opportunities": 0, "tasks": 0, "dispatches": 0}


@pytest.mark.django_db
def test_an_agreement_that_cannot_run_is_skipped_and_the_others_go_on(agreement):
    broken = AgreementFactory(account=AccountFactory(account_manager=None))
    Agreement.objects.filter(pk=broken.pk).update(plan="FREQ=HOURLY")

    counts = generate_parc_visits(MONDAY)

    assert counts["skipped"] == 1 and counts["visits"] == 1
    assert ParcVisit.objects.get().agreement == agreement


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite caps the rows of one INSERT at 999 values"
)
@pytest.mark.django_db
@pytest.mark.parametrize("size", [10, 200])
def test_the_number_of_queries_does_not_grow_with_agreements(size, django_assert_num_queries):
    manager = UserFactory(username="maria_manager", role="manager")
    for _ in range(size):
        AgreementFactory(account=AccountFactory(account_manager=manager))

    with django_assert_num_queries(23):
        counts = generate_parc_visits(MONDAY)

    assert counts["visits"] == size and counts["summaries"] == 1


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SKIP LOCKED and concurrent writers are PostgreSQL's"
)
@pytest.mark.django_db(transaction=True)
def test_two_runners_at_once_make_each_visit_once():
    """Two runs racing past the engine's lock (a manual run beside the scheduled one on two
    hosts, say): the UNIQUE visit and the row locks still make each record once."""
    manager = UserFactory(username="maria_manager", role="manager")
    for _ in range(30):
        AgreementFactory(account=AccountFactory(account_manager=manager))
    outcomes = at_once(generate_parc_visits, MONDAY)

    assert len(outcomes) == 2  # both finished
    assert sum(o["visits"] for o in outcomes) == 30
    assert records() == {"visits": 30, "opportunities": 30, "tasks": 60, "dispatches": 30}


@time_machine.travel(MONDAY, tick=False)
@pytest.mark.django_db
def test_as_of_a_past_monday_regenerates_that_week_idempotently(agreement):
    runner.run_job("parc_generate", MONDAY)
    ParcVisit.objects.all().delete()
    Opportunity.objects.all().delete()

    again = runner.run_job("parc_generate", MONDAY - timedelta(weeks=0))
    twice = runner.run_job("parc_generate", MONDAY)

    assert again.counts["visits"] == 1 and twice.counts["visits"] == 0


def test_working_days_skip_weekends():
    friday = date(2027, 1, 8)
    assert add_working_days(friday, 1) == date(2027, 1, 11)
    assert add_working_days(friday, 5) == date(2027, 1, 15)
    assert add_working_days(friday, 0) == friday
