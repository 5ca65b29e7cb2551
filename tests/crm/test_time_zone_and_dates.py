"""Dates in one format, in each user's own time zone: a rep in New York sees a task's due time
in New York time, a colleague without a zone in the company's; the settings page sets the zone
(a real one only, behind login and CSRF); people are shown by their full names."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.dates import when
from crm.models import User
from mailsync.models import Mailbox
from tests.clients import logged_in
from tests.factories import TaskFactory, TeamFactory, UserFactory

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
# 16:30 in Paris (the company), 10:30 in New York: the same instant, six and a half hours on.
DUE = datetime(2026, 11, 28, 15, 30, tzinfo=UTC)
PREFERENCES = "/me/"
QUERIES = 4  # the session, the user, the blocking gate, the calendar feed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def company_in_paris_at_nine(settings):
    settings.TIME_ZONE = "Europe/Paris"
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def rita(db):
    return UserFactory(
        username="rita_rep", first_name="Rita", last_name="Reyes", team=TeamFactory(name="North")
    )


@pytest.fixture
def nick(db):
    return UserFactory(
        username="nick_ny",
        first_name="Nick",
        last_name="Nolan",
        team=TeamFactory(name="North"),
        time_zone="America/New_York",
    )


@pytest.fixture
def task(rita):
    return TaskFactory(title="Call Acme back", owner=rita, due_at=DUE)


def task_page(user, task) -> str:
    response = logged_in(user).get(reverse("task_detail", args=[task.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_user_with_a_time_zone_sees_the_due_time_in_it(nick, task):
    page = task_page(nick, task)

    assert "Sat 28 Nov 2026 10:30" in page and "(in 6 h)" in page
    assert "16:30" not in page


def test_a_user_without_a_time_zone_sees_the_company_time(rita, task):
    page = task_page(rita, task)

    assert "Sat 28 Nov 2026 16:30" in page and "(in 6 h)" in page


def test_a_zone_the_tz_database_does_not_know_falls_back_to_the_company_time(rita, task):
    User.objects.filter(pk=rita.pk).update(time_zone="Mars/Olympus")

    assert "Sat 28 Nov 2026 16:30" in task_page(rita, task)


def test_the_users_zone_does_not_outlive_the_request(nick, task):
    task_page(nick, task)

    assert timezone.get_current_timezone_name() == "Europe/Paris"


def test_the_time_zone_costs_no_query(nick, task, settings):
    def queries() -> int:
        client = logged_in(nick)
        with CaptureQueriesContext(connection) as captured:
            client.get(reverse("task_detail", args=[task.pk]))
        return len(captured)

    with_zone = queries()
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != "crm.middleware.UserTimeZone"]

    assert with_zone == queries()


def test_the_settings_page_saves_a_time_zone(rita):
    client = logged_in(rita)

    page = client.get(PREFERENCES).content.decode()
    assert f'href="{PREFERENCES}"' in page  # the "Settings" link of the nav
    assert '<input type="text" name="time_zone" list="time-zones"' in page

    response = client.post(PREFERENCES, {"time_zone": "America/New_York"}, follow=True)

    assert response.redirect_chain == [(PREFERENCES, 302)]
    assert "now shown in America/New_York" in response.content.decode()
    rita.refresh_from_db()
    assert rita.time_zone == "America/New_York"


def test_the_settings_page_sends_no_list_of_zones(rita):
    # 600 options made the page 32 KB, slower than the dashboard: the field asks for them
    # (htmx, on its first focus) and the browser keeps them a day.
    client = logged_in(rita)
    page = client.get(PREFERENCES).content.decode()

    assert "<option" not in page and len(page) < 8_000
    assert 'hx-get="/me/time-zones" hx-trigger="focus once"' in page
    assert '<datalist id="time-zones"></datalist>' in page
    zones = client.get("/me/time-zones", headers={"HX-Request": "true"})
    assert zones.content.decode().startswith('<datalist id="time-zones"><option value=')
    assert '<option value="America/New_York">' in zones.content.decode()
    assert "US/Eastern" not in zones.content.decode()  # aliases are not offered
    assert "max-age=86400" in zones["Cache-Control"] and "private" in zones["Cache-Control"]
    assert "HX-Request" in zones["Vary"]
    # Without JavaScript, the page's help links to them as a page.
    assert 'href="/me/time-zones"' in page
    listed = client.get("/me/time-zones").content.decode()
    assert "<li>Europe/Paris</li>" in listed and "<html" in listed


@pytest.mark.parametrize(
    ("typed", "saved"),
    [
        ("europe/paris", "Europe/Paris"),
        ("  America/New York ", "America/New_York"),
        ("AMERICA/ARGENTINA/BUENOS AIRES", "America/Argentina/Buenos_Aires"),
        ("US/Eastern", "US/Eastern"),  # an alias is still a zone
    ],
)
def test_a_zone_typed_in_any_case_or_with_spaces_is_saved_by_its_name(rita, typed, saved):
    logged_in(rita).post(PREFERENCES, {"time_zone": typed})

    rita.refresh_from_db()
    assert rita.time_zone == saved


def test_the_list_of_zones_needs_a_login():
    response = Client().get("/me/time-zones", headers={"HX-Request": "true"})

    assert response.status_code == 302


def test_a_zone_at_the_fields_length_is_refused_in_one_line(rita):
    response = logged_in(rita).post(PREFERENCES, {"time_zone": "Z" * 64 + " " * 10_000})

    assert response.status_code == 200
    assert "is not a time zone Vigil knows" in response.content.decode()
    rita.refresh_from_db()
    assert rita.time_zone == ""


def test_the_settings_page_goes_back_to_the_company_zone(nick):
    logged_in(nick).post(PREFERENCES, {"time_zone": ""})

    nick.refresh_from_db()
    assert nick.time_zone == ""


def test_the_settings_page_refuses_a_zone_that_does_not_exist(nick):
    response = logged_in(nick).post(PREFERENCES, {"time_zone": "Mars/Olympus"})

    assert response.status_code == 200
    assert "“Mars/Olympus” is not a time zone" in response.content.decode()
    nick.refresh_from_db()
    assert nick.time_zone == "America/New_York"


def test_the_settings_page_needs_a_login(rita):
    response = Client().post(PREFERENCES, {"time_zone": "America/New_York"})

    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    rita.refresh_from_db()
    assert rita.time_zone == ""


def test_the_settings_page_needs_the_csrf_token(rita):
    client = Client(enforce_csrf_checks=True)
    client.force_login(rita)

    assert client.post(PREFERENCES, {"time_zone": "America/New_York"}).status_code == 403
    rita.refresh_from_db()
    assert rita.time_zone == ""


def test_the_settings_page_sets_the_morning_digest_and_alerts_at_once(rita):
    client = logged_in(rita)
    page = client.get(PREFERENCES).content.decode()
    assert "Email me a digest of today&#x27;s work at the start of my working day" in page
    assert "Send overdue-job alerts at once, even when I&#x27;m off duty" in page
    assert page.count('type="checkbox"') == 2 and " checked" not in page
    assert 'aria-describedby="id_morning_digest_helptext"' in page
    assert 'id="id_morning_digest_helptext"' in page

    client.post(PREFERENCES, {"time_zone": "", "morning_digest": "on", "alerts_at_once": "on"})

    rita.refresh_from_db()
    assert rita.morning_digest and rita.alerts_at_once
    assert client.get(PREFERENCES).content.decode().count(" checked") == 2

    client.post(PREFERENCES, {"time_zone": ""})  # both unticked

    rita.refresh_from_db()
    assert not rita.morning_digest and not rita.alerts_at_once


def test_the_settings_page_changes_only_what_it_shows(rita):
    User.objects.filter(pk=rita.pk).update(last_digest_on=date(2026, 11, 27))

    logged_in(rita).post(
        PREFERENCES,
        {"morning_digest": "on", "last_digest_on": "2030-01-01", "is_staff": "on", "role": "admin"},
    )

    rita.refresh_from_db()
    assert rita.morning_digest
    assert rita.last_digest_on == date(2026, 11, 27)
    assert not rita.is_staff and rita.role == User.Role.REP


def test_the_settings_page_costs_a_fixed_number_of_queries(rita, django_assert_num_queries):
    client = logged_in(rita)

    with django_assert_num_queries(QUERIES):
        assert client.get(PREFERENCES).status_code == 200


def test_the_admin_edits_a_users_time_zone(nick, administrator):
    page = logged_in(administrator).get(reverse("admin:crm_user_change", args=[nick.pk]))

    assert '<select name="time_zone"' in page.content.decode()
    assert '<option value="America/New_York" selected>' in page.content.decode()


def test_a_user_is_shown_by_full_name_else_username(rita):
    assert str(rita) == "Rita Reyes"
    assert str(UserFactory(username="no_name")) == "no_name"


def test_the_object_page_shows_the_owners_full_name(rita, task):
    manager = UserFactory(username="manny_manager", role="manager", team=rita.team)

    assert "<dd>Rita Reyes</dd>" in task_page(manager, task)


def test_the_object_page_and_the_mailbox_page_show_the_same_format(rita, task):
    Mailbox.objects.create(
        owner=rita,
        provider=Mailbox.Provider.IMAP,
        auth=Mailbox.Auth.PASSWORD,
        address="rita@vigil.example",
        username="rita@vigil.example",
        imap_host="imap.vigil.example",
        status=Mailbox.Status.ACTIVE,
        last_synced_at=DUE,
        created_at=NOW,
    )

    mailboxes = logged_in(rita).get(reverse("mailsync:mailboxes")).content.decode()

    assert "Sat 28 Nov 2026 16:30" in mailboxes
    assert "Sat 28 Nov 2026 16:30" in task_page(rita, task)


def test_one_instant_written_in_two_zones_keeps_each_its_own_stamp():
    """The <time> element is cached per moment: an equal instant with another offset is
    another stamp, whichever was asked for first."""
    at = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    berlin = at.astimezone(ZoneInfo("Europe/Berlin"))

    assert 'datetime="2026-03-10T10:00:00+01:00"' in when(berlin, ago=False)
    assert 'datetime="2026-03-10T09:00:00+00:00"' in when(at, ago=False)
