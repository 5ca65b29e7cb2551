"""The working calendar's admin pages: the calendar and the company's days off are set by
administrators; a manager with the permissions adds and changes their own team's days off and
absences, and nothing of another team."""

from datetime import date

import pytest
from django.contrib.auth.models import Permission

from crm.models import Absence, Holiday, WorkingCalendar
from tests.clients import logged_in
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def staff(username, team, *models):
    user = UserFactory(username=username, role="manager", team=team, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="crm", content_type__model__in=models)
    )
    return user


@pytest.fixture
def south(db):
    return TeamFactory(name="South")


def test_a_staff_user_without_the_permission_cannot_create_the_calendar(north):
    rep = UserFactory(username="rex", role="rep", team=north, is_staff=True)

    response = logged_in(rep).post(
        "/admin/crm/workingcalendar/add/",
        {"enabled": "on", "work_days": "67", "day_starts": "09:00", "day_ends": "17:00"},
    )

    assert response.status_code == 403 and not WorkingCalendar.objects.exists()


def test_a_manager_adds_their_teams_day_off_not_the_companys_nor_anothers(north, south):
    manny = staff("manny", north, "holiday")
    client = logged_in(manny)
    day = {"date": "2026-07-10", "name": "Team day"}

    assert client.post("/admin/crm/holiday/add/", {**day, "team": ""}).status_code == 200
    assert client.post("/admin/crm/holiday/add/", {**day, "team": south.pk}).status_code == 200
    assert not Holiday.objects.exists()
    assert client.post("/admin/crm/holiday/add/", {**day, "team": north.pk}).status_code == 302
    company = Holiday.objects.create(date=date(2026, 12, 24), name="Christmas Eve")
    theirs = Holiday.objects.create(date=date(2026, 7, 10), name="South day", team=south)

    assert (
        client.post(f"/admin/crm/holiday/{company.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert client.get(f"/admin/crm/holiday/{theirs.pk}/change/").status_code == 302  # not found
    assert Holiday.objects.count() == 3


def test_a_manager_sees_and_records_only_their_teams_absences(north, south):
    manny = staff("manny", north, "absence", "user")
    rita = UserFactory(username="rita", role="rep", team=north)
    olga = UserFactory(username="olga", role="rep", team=south)
    Absence.objects.create(user=olga, first_day=date(2026, 3, 9), last_day=date(2026, 3, 9))
    client = logged_in(manny)
    leave = {"kind": "leave", "first_day": "2026-03-09", "last_day": "2026-03-20"}

    listed = client.get("/admin/crm/absence/").context["cl"].queryset
    assert list(listed) == []
    assert client.post("/admin/crm/absence/add/", {**leave, "user": olga.pk}).status_code == 200
    refused = {**leave, "user": rita.pk, "delegate": olga.pk}
    assert client.post("/admin/crm/absence/add/", refused).status_code == 200
    response = client.post("/admin/crm/absence/add/", {**leave, "user": rita.pk})
    assert response.status_code == 302
    assert Absence.objects.get(user=rita).recorded_by == manny


def test_the_admin_keeps_the_away_pages_rules(north, time_machine):
    time_machine.move_to(date(2026, 3, 10), tick=False)
    rex = UserFactory(username="rex", role="rep", team=north, is_staff=True)
    rex.user_permissions.set(
        Permission.objects.filter(content_type__app_label="crm", content_type__model="absence")
    )
    rita = UserFactory(username="rita", role="rep", team=north)
    manny = staff("manny", north, "absence", "user")
    theirs = Absence.objects.create(
        user=rita, first_day=date(2026, 3, 16), last_day=date(2026, 3, 16)
    )
    leave = {"kind": "leave", "last_day": "2026-03-20"}

    # A staff rep records only their own absence, from today on, and changes no colleague's.
    assert (
        logged_in(rex)
        .post("/admin/crm/absence/add/", {**leave, "user": rita.pk, "first_day": "2026-03-11"})
        .status_code
        == 200
    )
    assert (
        logged_in(rex)
        .post("/admin/crm/absence/add/", {**leave, "user": rex.pk, "first_day": "2026-03-09"})
        .status_code
        == 200
    )
    assert (
        logged_in(rex).post(f"/admin/crm/absence/{theirs.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    # Their manager records the days already gone, but not their own.
    assert (
        logged_in(manny)
        .post("/admin/crm/absence/add/", {**leave, "user": rita.pk, "first_day": "2026-03-09"})
        .status_code
        == 302
    )
    assert (
        logged_in(manny)
        .post("/admin/crm/absence/add/", {**leave, "user": manny.pk, "first_day": "2026-03-09"})
        .status_code
        == 200
    )
    assert (
        Absence.objects.filter(user=rita).count() == 2
        and not Absence.objects.filter(user__in=[rex, manny]).exists()
    )
