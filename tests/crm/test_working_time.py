"""Working time (crm.workingtime): a person's working days and hours in their own zone, less
public holidays of their region, days off the admin added and their absences; is-working, the
next working instant and "add N working hours", across DST changes."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from crm.models import Absence, Holiday, WorkingCalendar
from crm.workingtime import NoWorkingTime, calendar_of, schedule
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)


def local(zone, *args) -> datetime:
    return datetime(*args, tzinfo=zone)


@pytest.fixture
def company():
    return WorkingCalendar.objects.create(holiday_country="DE", holiday_subdivision="BY")


@pytest.fixture
def north(db):
    return TeamFactory(name="North")


@pytest.fixture
def rita(north):
    return UserFactory(username="rita", role="rep", team=north, time_zone="Europe/Berlin")


def test_a_person_works_the_company_days_and_hours_in_their_own_zone(company, rita):
    cal = calendar_of(rita, datetime(2026, 3, 1, tzinfo=UTC))

    assert cal.is_working(local(BERLIN, 2026, 3, 10, 9, 0))  # Tuesday 09:00
    assert not cal.is_working(local(BERLIN, 2026, 3, 10, 17, 0))  # the end is not in it
    assert not cal.is_working(local(BERLIN, 2026, 3, 10, 8, 59))
    assert not cal.is_working(local(BERLIN, 2026, 3, 14, 12, 0))  # Saturday
    # Friday 16:00 plus two working hours: one on Friday, one on Monday from 09:00.
    friday = local(BERLIN, 2026, 3, 13, 16, 0)
    assert cal.add(friday, 2 * H) == local(BERLIN, 2026, 3, 16, 10, 0)
    assert cal.next_working_instant(local(BERLIN, 2026, 3, 14, 12, 0)) == local(
        BERLIN, 2026, 3, 16, 9, 0
    )
    assert cal.next_working_instant(friday) == friday


def test_a_public_holiday_of_the_region_and_an_added_day_off_are_not_worked(company, rita):
    Holiday.objects.create(date=date(2026, 12, 28), name="Bridge day")
    cal = calendar_of(rita, datetime(2026, 12, 1, tzinfo=UTC))

    # Thu 24 Dec works; Fri 25 and Sat 26 (holidays, weekend), Mon 28 (bridge day) do not.
    thursday = local(BERLIN, 2026, 12, 24, 16, 0)
    assert cal.add(thursday, 2 * H) == local(BERLIN, 2026, 12, 29, 10, 0)
    assert not cal.is_working(local(BERLIN, 2026, 1, 6, 10, 0).replace(year=2027))  # Epiphany, BY


def test_a_team_keeps_the_holidays_of_its_own_region(company, rita, north):
    visiting = TeamFactory(name="Visiting", holiday_country="FR")
    vera = UserFactory(username="vera", team=visiting, time_zone="Europe/Paris")
    Holiday.objects.create(date=date(2026, 7, 10), name="Team day", team=north)

    assert not calendar_of(vera, datetime(2026, 7, 1, tzinfo=UTC)).works_on(
        date(2026, 7, 14)
    )  # Bastille Day
    assert calendar_of(rita, datetime(2026, 7, 1, tzinfo=UTC)).works_on(date(2026, 7, 14))
    assert not calendar_of(rita, datetime(2026, 7, 1, tzinfo=UTC)).works_on(date(2026, 7, 10))
    assert calendar_of(vera, datetime(2026, 7, 1, tzinfo=UTC)).works_on(
        date(2026, 7, 10)
    )  # North's day only


def test_an_absence_is_not_worked_and_a_deadline_moves_past_it(company, rita):
    Absence.objects.create(user=rita, first_day=date(2026, 3, 9), last_day=date(2026, 3, 20))
    cal = calendar_of(rita, datetime(2026, 3, 1, tzinfo=UTC))

    friday = local(BERLIN, 2026, 3, 6, 15, 0)
    assert cal.add(friday, 4 * H) == local(BERLIN, 2026, 3, 23, 11, 0)
    assert not cal.is_working(local(BERLIN, 2026, 3, 16, 10, 0))


def test_own_hours_and_days_win_over_the_companys(company, north):
    nick = UserFactory(
        username="nick",
        team=north,
        time_zone="America/New_York",
        work_days="67",
        day_starts=time(10),
        day_ends=time(14),
    )
    cal = calendar_of(nick, datetime(2026, 3, 1, tzinfo=UTC))

    assert cal.is_working(local(NEW_YORK, 2026, 3, 14, 10, 0))  # Saturday, in New York
    assert not cal.is_working(local(NEW_YORK, 2026, 3, 16, 10, 0))  # Monday
    assert cal.add(local(NEW_YORK, 2026, 3, 14, 13, 0), 2 * H) == local(NEW_YORK, 2026, 3, 15, 11)


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        (BERLIN, date(2026, 3, 29), 3),  # clocks go forward at 02:00: 01:00-05:00 is 3 h
        (BERLIN, date(2026, 10, 25), 5),  # back at 03:00: 5 h
        (NEW_YORK, date(2026, 3, 8), 3),
        (NEW_YORK, date(2026, 11, 1), 5),
    ],
)
def test_a_working_day_across_a_dst_change_lasts_what_the_clock_says(
    company, north, zone, day, hours
):
    night = UserFactory(
        username="night",
        team=north,
        time_zone=str(zone),
        work_days="1234567",
        day_starts=time(1),
        day_ends=time(5),
    )
    company.holiday_country = ""
    company.save()
    cal = calendar_of(night, datetime.combine(day, time(0), tzinfo=zone))
    start = datetime.combine(day, time(1), tzinfo=zone)

    assert cal.add(start, hours * H) == datetime.combine(day, time(5), tzinfo=zone)
    assert cal.add(start, hours * H + timedelta(minutes=1)) == datetime.combine(
        day + timedelta(days=1), time(1, 1), tzinfo=zone
    )
    assert cal.add(start, hours * H).astimezone(UTC) - start.astimezone(UTC) == hours * H


def test_a_deadline_in_working_time_crosses_a_dst_change_by_the_wall_clock(company, rita):
    # Friday 27 March 2026 16:00 CET plus 2 working hours: 17:00 on Friday, then 10:00 on
    # Monday 30 March, which is CEST (UTC+2) after the clocks went forward on Sunday.
    cal = calendar_of(rita, datetime(2026, 3, 1, tzinfo=UTC))

    deadline = cal.add(local(BERLIN, 2026, 3, 27, 16, 0), 2 * H)
    assert deadline.astimezone(BERLIN).isoformat() == "2026-03-30T10:00:00+02:00"
    assert deadline == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)


def test_a_calendar_without_working_time_says_so_within_bounded_work(company, rita):
    Absence.objects.create(user=rita, first_day=date(2026, 1, 1), last_day=date(2026, 12, 31))
    WorkingCalendar.objects.update(work_days="")  # written around the admin's validation
    cal = calendar_of(rita, datetime(2026, 1, 1, tzinfo=UTC))

    with pytest.raises(NoWorkingTime, match="No working time within 1098 days"):
        cal.add(local(BERLIN, 2026, 1, 1, 9, 0), H)


@pytest.mark.parametrize(
    ("country", "subdivision", "message"),
    [
        ("XX", "", "“XX” is not a country code"),
        ("DE", "ZZ", "DE has no region “ZZ”"),
        ("", "BY", "A region needs its country."),
    ],
)
def test_an_unknown_holiday_region_is_refused_in_one_line(country, subdivision, message):
    calendar = WorkingCalendar(holiday_country=country, holiday_subdivision=subdivision)

    with pytest.raises(ValidationError) as refused:
        calendar.full_clean()

    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"work_days": "1234568"}, "Working days are ISO weekday digits"),
        ({"work_days": "11"}, "Working days are ISO weekday digits"),
        ({"work_days": ""}, "Name at least one working day."),
        ({"day_starts": time(17), "day_ends": None}, "the start and the end of the working day"),
    ],
)
def test_bad_working_hours_are_refused_in_one_line(fields, message):
    with pytest.raises(ValidationError) as refused:
        WorkingCalendar(**fields).full_clean()

    assert message in str(refused.value)


def test_an_absence_is_a_stretch_of_days_of_someone_else_delegated(rita):
    too_long = Absence(user=rita, first_day=date(2026, 1, 1), last_day=date(2062, 1, 1))
    backwards = Absence(user=rita, first_day=date(2026, 1, 2), last_day=date(2026, 1, 1))
    self_delegated = Absence(
        user=rita, first_day=date(2026, 1, 1), last_day=date(2026, 1, 2), delegate=rita
    )

    for absence, message in [
        (too_long, "a year at most"),
        (backwards, "on or after the first"),
        (self_delegated, "someone else"),
    ]:
        with pytest.raises(ValidationError, match=message):
            absence.full_clean()


def test_a_negative_duration_is_refused_and_a_long_one_is_found(company, rita):
    cal = calendar_of(rita, datetime(2026, 3, 1, tzinfo=UTC))
    start = local(BERLIN, 2026, 3, 2, 9, 0)

    with pytest.raises(ValueError, match="added, not taken away"):
        cal.add(start, -H)
    # 10,000 working hours are about five years: the horizon counts idle days, not all days.
    assert cal.add(start, 10_000 * H).year in (2030, 2031)


def test_an_end_the_clocks_repeat_is_its_second_passing(company, north):
    late = UserFactory(
        username="late",
        team=north,
        time_zone="Europe/Berlin",
        work_days="1234567",
        day_starts=time(1),
        day_ends=time(2, 30),
    )
    company.holiday_country = ""
    company.save()
    day = date(2026, 10, 25)  # 03:00 CEST becomes 02:00 CET
    cal = calendar_of(late, datetime.combine(day, time(0), tzinfo=BERLIN))

    start, end = cal.shift(day)
    assert end - start == timedelta(hours=2, minutes=30)


def test_days_off_are_read_from_the_users_own_day(company, north):
    los_angeles = ZoneInfo("America/Los_Angeles")
    lou = UserFactory(username="lou", team=north, time_zone="America/Los_Angeles")
    Absence.objects.create(user=lou, first_day=date(2026, 3, 2), last_day=date(2026, 3, 2))

    # 01:00 UTC on Tuesday is 17:00 on Monday in Los Angeles: Monday's absence counts.
    cal = calendar_of(lou, datetime(2026, 3, 3, 1, 0, tzinfo=UTC))

    assert not cal.is_working(local(los_angeles, 2026, 3, 2, 16, 0))
    assert cal.is_working(local(los_angeles, 2026, 3, 3, 9, 0))


def test_holidays_of_every_year_are_there_when_many_threads_ask_at_once(company, rita):
    from concurrent.futures import ThreadPoolExecutor

    from crm.workingtime import _public_holidays

    _public_holidays.cache_clear()
    cal = calendar_of(rita, datetime(2026, 1, 1, tzinfo=UTC))
    christmases = [date(year, 12, 25) for year in range(2030, 2062)]
    with ThreadPoolExecutor(16) as pool:
        found = list(pool.map(cal.public_holiday, christmases * 4))

    assert all(found)
    assert all(cal.public_holiday(day) for day in christmases)


def test_a_lower_case_country_is_written_in_capitals():
    calendar = WorkingCalendar(holiday_country="de", holiday_subdivision="BY")

    calendar.full_clean()

    assert calendar.holiday_country == "DE"


def test_a_night_shift_ends_the_next_morning_and_round_the_clock_is_24_hours():
    night = schedule("Europe/Berlin", "12345", time(22), time(6))
    monday_night = local(BERLIN, 2026, 3, 9, 23, 0)

    assert night.is_working(local(BERLIN, 2026, 3, 10, 5, 59))  # Monday's shift, on Tuesday
    assert not night.is_working(local(BERLIN, 2026, 3, 10, 6, 0))
    assert night.add(monday_night, 3 * H) == local(BERLIN, 2026, 3, 10, 2, 0)
    # Friday's shift ends on Saturday at 06:00; Saturday and Sunday nights are off.
    assert night.add(local(BERLIN, 2026, 3, 14, 5, 0), 2 * H) == local(BERLIN, 2026, 3, 16, 23, 0)
    always = schedule("UTC", "1234567", time(0), time(0))
    start = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    assert always.add(start, 100 * H) == start + 100 * H


def test_a_schedule_of_no_user_keeps_its_regions_holidays():
    window = schedule("Europe/Paris", "234", time(9), time(17), "FR")

    # Tuesday 14 July 2026 is Bastille Day: the window opens on Wednesday.
    assert window.next_working_instant(local(ZoneInfo("Europe/Paris"), 2026, 7, 14, 8, 0)) == (
        local(ZoneInfo("Europe/Paris"), 2026, 7, 15, 9, 0)
    )


@pytest.mark.parametrize(
    ("zone", "around"),
    [
        ("Europe/Berlin", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),  # clocks forward at 02:00
        ("Europe/Berlin", datetime(2026, 10, 25, 1, 0, tzinfo=UTC)),  # back at 03:00
        ("America/Havana", datetime(2026, 11, 1, 5, 0, tzinfo=UTC)),  # back at midnight
        ("America/Santiago", datetime(2026, 9, 6, 4, 0, tzinfo=UTC)),  # forward at midnight
    ],
)
@pytest.mark.parametrize("starts", [time(0), time(2)])
def test_round_the_clock_is_every_hour_once_across_any_clock_change(zone, around, starts):
    always = schedule(zone, "1234567", starts, starts)

    for minutes in range(-180, 181, 30):
        start = around + timedelta(minutes=minutes)
        assert always.is_working(start), start
        for hours in (1, 3, 30):
            assert always.add(start, hours * H) == start + hours * H, (start, hours)


def test_a_night_shift_ending_in_the_skipped_hour_ends_when_the_clocks_jump():
    night = schedule("Europe/Berlin", "1234567", time(22), time(2, 30))
    start, end = night.shift(date(2026, 3, 28))  # 02:00 CET became 03:00 CEST on the 29th

    assert (start, end) == (
        datetime(2026, 3, 28, 21, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
    )


def test_a_night_shift_stops_at_midnight_before_a_day_off():
    tuesday = date(2026, 3, 10)
    night = schedule("Europe/Berlin", "12345", time(22), time(6), days_off=frozenset([tuesday]))

    assert night.is_working(local(BERLIN, 2026, 3, 9, 23, 30))
    assert not night.is_working(local(BERLIN, 2026, 3, 10, 3, 0))  # the leave has begun
    # Monday 23:00 plus 2 h: one on Monday night, one on Wednesday night from 22:00.
    assert night.add(local(BERLIN, 2026, 3, 9, 23, 0), 2 * H) == local(BERLIN, 2026, 3, 11, 23, 0)


def test_a_schedule_in_a_country_without_known_holidays_has_none():
    somewhere = schedule("UTC", "12345", time(9), time(17), "ZZ")
    christmas = schedule("UTC", "12345", time(9), time(17), "de")

    assert somewhere.works_on(date(2026, 12, 25))
    assert not christmas.works_on(date(2026, 12, 25))


def test_taking_working_time_back_is_adding_it_in_reverse(company, rita):
    cal = calendar_of(rita, datetime(2026, 1, 1, tzinfo=UTC))
    monday_10 = local(BERLIN, 2026, 3, 16, 10, 0)

    # Three working hours before Monday 10:00: one on Monday, two on Friday until 17:00.
    assert cal.back(monday_10, 3 * H) == local(BERLIN, 2026, 3, 13, 15, 0)
    assert cal.add(local(BERLIN, 2026, 3, 13, 15, 0), 3 * H) == monday_10
    assert cal.back(monday_10, timedelta(0)) == monday_10
    # Across the spring change (29 March) and a fortnight back, round trips hold.
    for hours in (1, 8, 9, 40, 81):
        start = cal.back(local(BERLIN, 2026, 3, 31, 11, 30), hours * H)
        assert cal.add(start, hours * H) == local(BERLIN, 2026, 3, 31, 11, 30)
        assert cal.working_between(start, local(BERLIN, 2026, 3, 31, 11, 30)) == hours * H
