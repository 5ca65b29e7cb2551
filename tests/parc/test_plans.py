"""Plans and opportunity-name patterns are user input: read by a grammar that allows only what
a visit plan needs, checked within a second of CPU on the worst input the field allows, and
harmless even in a row that skipped the check."""

import itertools
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

import pytest
from dateutil.rrule import rrulestr
from django.core.exceptions import ValidationError
from django.urls import reverse

from parc import visits
from parc.jobs import generate_parc_visits
from parc.models import Agreement, ParcVisit, opportunity_name
from parc.plans import PlanError, next_visits, parse_plan, visit_dates
from tests.factories import AccountFactory
from tests.parc.conftest import AgreementFactory, agreement_form

FIRST = date(2027, 1, 5)  # a Tuesday
PLAN_LENGTH = Agreement._meta.get_field("plan").max_length
NAME_LENGTH = Agreement._meta.get_field("opportunity_name").max_length
CPU_SECONDS = 1.0


def longest_list(prefix: str, values) -> str:
    """`prefix` and as many of `values`, comma separated, as the plan field holds."""
    text = prefix + str(next(values))
    for value in values:
        if len(f"{text},{value}") > PLAN_LENGTH:
            return text
        text = f"{text},{value}"
    return text


def cpu(function, *args):
    """What `function(*args)` raised (or returned), and the CPU seconds it took."""
    before = time.process_time()
    try:
        outcome = function(*args)
    except (PlanError, ValidationError) as exc:
        outcome = exc
    return outcome, time.process_time() - before


WORST_PLANS = [
    longest_list("FREQ=DAILY;BYSETPOS=", iter(range(2, 1000))),
    "FREQ=DAILY;BYSETPOS=2",
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=DAILY;BYEASTER=0;BYMONTH=1",
    "FREQ=DAILY;BYWEEKNO=53;BYMONTH=6",
    "FREQ=DAILY;FREQ=SECONDLY",
    "FREQ=WEEKLY;FREQ=HOURLY",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    longest_list("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=", iter(range(6, 1000))),
    longest_list("FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29;BYSETPOS=", iter(range(2, 999))),
    "FREQ=DAILY;INTERVAL=7;BYMONTH=2;BYMONTHDAY=29;BYDAY=WE",  # never: a Tuesday start
    "FREQ=YEARLY;UNTIL=20261231;BYMONTH=1",
    longest_list("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=", itertools.repeat(30)),
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",  # first in 2044: past the 10 years looked at
    ("FREQ=DAILY;" * 50)[:PLAN_LENGTH],
    "FREQ=DAILY;COUNT=99999999999999999999999999999999999999999999999999999999",
    "FREQ=DAILY;INTERVAL=" + "9" * (PLAN_LENGTH - 20),
    "FREQ=DAILY;UNTIL=99991231T235959Z;BYHOUR=1",
    "DTSTART:20270105T000000\nRRULE:FREQ=DAILY",
]


@pytest.mark.parametrize("plan", WORST_PLANS)
def test_a_plan_that_yields_nothing_or_too_much_is_refused_within_a_second(plan):
    assert len(plan) <= PLAN_LENGTH

    refused, seconds = cpu(parse_plan, plan, FIRST)

    assert isinstance(refused, PlanError), refused
    assert seconds < CPU_SECONDS


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ("FREQ=DAILY;FREQ=SECONDLY", "FREQ is given twice"),
        ("FREQ=WEEKLY;FREQ=HOURLY", "FREQ is given twice"),
        ("FREQ=WEEKLY;BYDAY=TU;BYDAY=WE", "BYDAY is given twice"),
        ("FREQ=HOURLY", "Visits cannot be more frequent than daily."),
        ("FREQ=DAILY;BYEASTER=0;BYMONTH=1", "BYEASTER is not allowed"),
        ("FREQ=DAILY;BYHOUR=9", "BYHOUR is not allowed"),
        ("FREQ=DAILY;BYWEEKNO=53;BYMONTH=6", "BYWEEKNO is not allowed"),
        ("BYDAY=TU", "Give the frequency"),
        ("FREQ=DAILY;BYMONTHDAY=32", "BYMONTHDAY takes"),
        ("FREQ=WEEKLY;BYDAY=1TU", "BYDAY=1TU"),
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "This rule yields no visit date"),
        ("FREQ=DAILY;BYSETPOS=2", "This rule yields no visit date"),
    ],
)
def test_each_refusal_names_its_reason(plan, message):
    with pytest.raises(PlanError, match=message):
        parse_plan(plan, FIRST)


def test_until_in_the_utc_form_calendar_programs_export_is_accepted():
    plan = "FREQ=WEEKLY;BYDAY=TU;UNTIL=20270201T000000Z"

    assert next_visits(plan, FIRST) == [
        date(2027, 1, 5),
        date(2027, 1, 12),
        date(2027, 1, 19),
        date(2027, 1, 26),
    ]


@pytest.mark.parametrize(
    ("visit_time", "last"), [(dtime(9, 0), date(2027, 2, 1)), (dtime(0, 30), date(2027, 2, 2))]
)
def test_until_ends_at_its_instant_not_its_day(settings, visit_time, last):
    # 23:59:59 UTC on 1 February is 00:59:59 on 2 February in Madrid: a 09:00 visit that day
    # starts after UNTIL, a 00:30 one before it.
    settings.TIME_ZONE = "Europe/Madrid"
    plan = "FREQ=DAILY;UNTIL=20270201T235959Z"

    days = visit_dates(plan, date(2027, 1, 30), None, date(2027, 2, 10), visit_time)

    assert days[-1] == last
    assert next_visits(plan, date(2027, 1, 30), visit_time=visit_time)[-1] == last


@pytest.mark.django_db
def test_a_first_visit_before_2000_is_refused_and_a_count_from_2000_runs_within_a_second():
    agreement = AgreementFactory.build(first_visit=date(1, 1, 1), plan="FREQ=DAILY;COUNT=9999")
    with pytest.raises(ValidationError) as refused:
        agreement.clean()
    assert "first_visit" in refused.value.message_dict

    plan = "FREQ=DAILY;COUNT=9999;BYMONTH=2;BYMONTHDAY=29"
    days, seconds = cpu(visit_dates, plan, date(2000, 1, 1), None, date(2030, 12, 31))

    assert seconds < CPU_SECONDS and days[0] == date(2000, 2, 29) and len(days) == 8


SAME_AS_DATEUTIL = [
    "FREQ=WEEKLY;BYDAY=TU",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=TH",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR;WKST=SU",
    "FREQ=WEEKLY",
    "FREQ=MONTHLY;BYDAY=1MO",
    "FREQ=MONTHLY;BYDAY=-1FR",
    "FREQ=MONTHLY;INTERVAL=3",
    "FREQ=MONTHLY;BYMONTHDAY=-1",
    "FREQ=MONTHLY;BYMONTHDAY=31",
    "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
    "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1,3",
    "FREQ=MONTHLY;BYMONTHDAY=13;BYDAY=FR",
    "FREQ=YEARLY",
    "FREQ=YEARLY;BYMONTH=3,9;BYDAY=2WE",
    "FREQ=YEARLY;BYDAY=20MO",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
    "FREQ=YEARLY;BYMONTHDAY=1",
    "FREQ=YEARLY;BYMONTH=6,7",
    "FREQ=DAILY;INTERVAL=10",
    "FREQ=DAILY;BYDAY=MO,WE;BYMONTH=1,7",
    "FREQ=WEEKLY;BYDAY=TU;COUNT=3",
    "FREQ=MONTHLY;UNTIL=20280101",
]


@pytest.mark.parametrize("plan", SAME_AS_DATEUTIL)
def test_plans_mean_what_they_mean_in_calendar_programs(plan):
    # Floating (naive) times, as a plan's: a visit is a date.
    start, end = datetime(2027, 1, 31), datetime(2032, 1, 31)  # noqa: DTZ001
    expected = [d.date() for d in rrulestr(plan, dtstart=start).between(start, end, inc=True)]

    assert visit_dates(plan, start.date(), None, end.date()) == expected
    # The first five, looked for in the ten years a plan must yield a visit in.
    ten_years = rrulestr(plan, dtstart=start).between(start, datetime(2037, 12, 31), inc=True)  # noqa: DTZ001
    assert next_visits(plan, start.date()) == [d.date() for d in ten_years[:5]]


BUSIEST = [
    longest_list("FREQ=DAILY;BYMONTHDAY=", iter(list(range(1, 32)) + list(range(-31, 0)))),
    longest_list(
        "FREQ=YEARLY;BYDAY=", (f"{n}{d}" for n in range(-53, 54) if n for d in ("MO", "TU"))
    ),
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29",  # every four years
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29,-1;BYDAY=MO,TU,WE,TH,FR,SA,-1SU;BYSETPOS=1,-1",
]


@pytest.mark.parametrize("plan", BUSIEST)
def test_the_busiest_and_sparsest_plans_are_read_and_run_within_a_second(plan):
    assert len(plan) <= PLAN_LENGTH
    before = time.process_time()

    parse_plan(plan, FIRST)
    next_visits(plan, FIRST)
    visit_dates(plan, FIRST, date(2060, 1, 1), date(2061, 1, 1))

    assert time.process_time() - before < CPU_SECONDS


@pytest.mark.django_db
def test_a_plan_that_skipped_validation_costs_the_weekly_run_nothing(agreement):
    broken = AgreementFactory(account=AccountFactory(account_manager=agreement.manager))
    for plan in WORST_PLANS:
        Agreement.objects.filter(pk=broken.pk).update(plan=plan)
        before = time.process_time()

        found, counts = visits.due(FIRST, FIRST + timedelta(days=366))

        assert time.process_time() - before < CPU_SECONDS
        assert counts == {"agreements": 2, "skipped": 1}
        assert {v.agreement for v in found} == {agreement}


@pytest.mark.parametrize(
    "pattern",
    [
        ("{account:😀>250000000}" + "x" * NAME_LENGTH)[:NAME_LENGTH],
        "{account!r}",
        "{account.__class__}",
        "{date[0]}",
        "{0}",
        "{}",
        "{client}",
        "{account",
        "}",
        "{{" * (NAME_LENGTH // 2 - 1) + "{",
    ],
)
def test_an_opportunity_name_uses_only_the_two_placeholders(agreement, pattern):
    agreement.opportunity_name = pattern

    refused, seconds = cpu(agreement.full_clean)

    assert isinstance(refused, ValidationError)
    assert refused.message_dict == {
        "opportunity_name": ["Use only {account} and {date} as placeholders; {{ and }} for braces."]
    }
    assert seconds < CPU_SECONDS


def test_an_opportunity_name_is_filled_in_by_plain_substitution():
    day = date(2027, 1, 5)

    assert opportunity_name("PARC {account} {date}", "Acme {date}", day) == (
        "PARC Acme {date} 2027-01-05"
    )
    assert opportunity_name("{{account}} {{{date}}}", "Acme", day) == "{account} {2027-01-05}"
    # A row written past the check: its braces are text, never a format specification.
    assert opportunity_name("{account:😀>250000000}", "Acme", day) == "{account:😀>250000000}"


@pytest.mark.django_db
def test_a_name_pattern_that_skipped_validation_is_used_as_text(agreement):
    Agreement.objects.filter(pk=agreement.pk).update(opportunity_name="{account:😀>250000000}")
    before = time.process_time()

    generate_parc_visits(datetime(2027, 1, 4, 5, 0, tzinfo=UTC))

    assert time.process_time() - before < CPU_SECONDS
    visit = ParcVisit.objects.select_related("opportunity").get()
    assert visit.opportunity.name == "{account:😀>250000000}"


@pytest.fixture
def admin_form(administrator):
    return agreement_form(AccountFactory(name="Acme", account_manager=administrator))


@pytest.mark.parametrize(
    ("field", "value"),
    [("plan", plan) for plan in WORST_PLANS[:7]]
    + [("opportunity_name", ("{account:😀>250000000}" + "x" * NAME_LENGTH)[:NAME_LENGTH])],
)
@pytest.mark.django_db
def test_the_admin_refuses_the_worst_input_with_a_form_error(
    administrator, admin_form, client, field, value
):
    client.force_login(administrator)
    before = time.process_time()

    response = client.post(reverse("admin:parc_agreement_add"), admin_form | {field: value})

    assert time.process_time() - before < CPU_SECONDS
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == [field]
    assert not Agreement.objects.exists()


@pytest.mark.django_db
def test_the_admin_accepts_until_in_utc(administrator, admin_form, client):
    client.force_login(administrator)
    plan = "FREQ=WEEKLY;BYDAY=TU;UNTIL=20270201T000000Z"

    response = client.post(reverse("admin:parc_agreement_add"), admin_form | {"plan": plan})

    assert response.status_code == 302
    assert Agreement.objects.get().plan == plan
