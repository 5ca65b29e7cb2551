"""Who is away (/team/away/ and the dashboard): a user records their own absence, a manager
their team's, an administrator anyone's; everyone sees their team's, nobody another team's."""

from datetime import UTC, date, datetime

import pytest

from crm.models import Absence
from tests.clients import logged_in
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
TODAY = date(2026, 3, 10)


@pytest.fixture(autouse=True)
def today(time_machine):
    time_machine.move_to(datetime(2026, 3, 10, 12, 0, tzinfo=UTC), tick=False)


@pytest.fixture
def ravi(north):
    return UserFactory(username="ravi", first_name="Ravi", role="rep", team=north)


@pytest.fixture
def manny(north):
    return UserFactory(username="manny", first_name="Manny", role="manager", team=north)


@pytest.fixture
def sam(db):
    return UserFactory(username="sam", first_name="Sam", role="manager", team=TeamFactory())


def record(client, who, **fields):
    data = {"user": who.pk, "kind": "leave", "first_day": "2026-03-10", "last_day": "2026-03-20"}
    return client.post("/team/away/", {**data, **fields})


def test_a_rep_records_their_own_leave_and_the_team_sees_it(rita, ravi, manny, sam):
    response = record(logged_in(rita), rita, delegate=ravi.pk, note="Skiing")

    assert response.status_code == 302
    absence = Absence.objects.get()
    assert (absence.user, absence.recorded_by, absence.delegate) == (rita, rita, ravi)
    dashboard = logged_in(ravi).get("/").content.decode()
    assert "Away today: Rita (leave until Fri 20 Mar 2026; Ravi stands in)" in dashboard
    assert "Rita" not in logged_in(sam).get("/").content.decode().split("Good day")[1]
    assert "Nobody on your team is away today" in logged_in(sam).get("/").content.decode()
    assert 'data-absence="' in logged_in(manny).get("/team/away/").content.decode()
    assert 'data-absence="' not in logged_in(sam).get("/team/away/").content.decode()


def test_a_rep_cannot_record_for_a_colleague_nor_a_manager_for_another_team(rita, ravi, sam):
    assert record(logged_in(rita), ravi).status_code == 400
    assert record(logged_in(sam), rita).status_code == 400
    assert not Absence.objects.exists()


def test_a_manager_records_for_their_team_and_removes_it_a_colleague_cannot(rita, ravi, manny):
    assert record(logged_in(manny), rita).status_code == 302
    absence = Absence.objects.get()
    assert absence.recorded_by == manny

    assert logged_in(ravi).post(f"/team/away/{absence.pk}/remove").status_code == 403
    page = logged_in(ravi).get("/team/away/").content.decode()
    assert f'action="/team/away/{absence.pk}/remove"' not in page
    assert logged_in(manny).post(f"/team/away/{absence.pk}/remove").status_code == 302
    assert not Absence.objects.exists()


def test_another_teams_absence_is_not_found_to_remove(rita, sam):
    absence = Absence.objects.create(user=rita, first_day=TODAY, last_day=TODAY)

    assert logged_in(sam).post(f"/team/away/{absence.pk}/remove").status_code == 404
    assert Absence.objects.exists()


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        ({"last_day": "2026-03-01"}, "Last day: The last day comes on or after the first."),
        ({"last_day": "2030-01-01"}, "Last day: An absence lasts a year at most."),
        ({"first_day": "2026-13-45"}, "First day: Enter a valid date."),
    ],
)
def test_a_bad_absence_is_refused_in_one_line_and_keeps_what_was_typed(rita, fields, line):
    response = record(logged_in(rita), rita, note="Typed", **fields)

    page = response.content.decode()
    assert response.status_code == 400 and not Absence.objects.exists()
    assert page.count('class="message error form-error"') == 1 and line in page
    assert 'value="Typed"' in page


def test_days_already_gone_are_the_managers_to_record(rita, manny):
    # An absence moves blocking deadlines past it: a rep cannot buy time after the fact.
    response = record(logged_in(rita), rita, first_day="2026-03-09")

    assert response.status_code == 400 and not Absence.objects.exists()
    assert "Days already gone are recorded by your manager" in response.content.decode()
    assert record(logged_in(manny), rita, first_day="2026-03-09").status_code == 302
    assert Absence.objects.get().first_day == date(2026, 3, 9)


def test_delegating_to_oneself_is_refused(rita):
    response = record(logged_in(rita), rita, delegate=rita.pk)

    assert (
        response.status_code == 400 and "A delegate is someone else." in response.content.decode()
    )


@pytest.mark.parametrize("rows", [1, 20])
def test_the_away_page_costs_the_same_queries_whatever_the_data(
    rows, rita, manny, django_assert_num_queries
):
    for n in range(rows):
        person = UserFactory(username=f"p{n}", team=rita.team)
        Absence.objects.create(user=person, first_day=TODAY, last_day=TODAY, delegate=rita)
    client = logged_in(manny)
    client.get("/team/away/")

    # session, user, gate; the absences with their people; the form's lists of people (the
    # required one read twice: Django's select asks its first option for the required mark)
    with django_assert_num_queries(7):
        assert client.get("/team/away/").status_code == 200


@pytest.mark.parametrize("role", ["finance", "manager"])
def test_someone_in_no_team_records_sees_and_removes_their_own_absence(db, role):
    fern = UserFactory(username="fern", first_name="Fern", role=role, team=None)
    client = logged_in(fern)

    assert record(client, fern).status_code == 302
    absence = Absence.objects.get()
    assert f'data-absence="{absence.pk}"' in client.get("/team/away/").content.decode()
    assert "Away today: Fern" in client.get("/").content.decode()
    assert client.post(f"/team/away/{absence.pk}/remove").status_code == 302


def test_an_administrators_dashboard_names_their_own_team_only(rita, sam):
    ada = UserFactory(username="ada", role="admin", is_superuser=True, team=sam.team)
    Absence.objects.create(user=rita, first_day=TODAY, last_day=TODAY)

    dashboard = logged_in(ada).get("/").content.decode()

    assert "Nobody on your team is away today" in dashboard
    assert "Rita" in logged_in(ada).get("/team/away/").content.decode()  # the page: everyone


def test_a_manager_does_not_backdate_their_own_absence(manny):
    response = record(logged_in(manny), manny, first_day="2026-03-09")

    assert response.status_code == 400 and not Absence.objects.exists()
