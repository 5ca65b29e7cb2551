"""The private calendar feed (crm/feeds.py): made on Settings, shown once, kept as a hash; read by
a calendar client with no session; the owner's events, visits, open tasks and blocking
deadlines, read back by two independent iCalendar parsers (icalendar and vobject)."""

import logging
from datetime import UTC, datetime, timedelta

import icalendar
import pytest
import vobject
from django.test import Client

from crm import feeds
from crm import settings as vigil_settings
from crm.feeds import fold
from crm.models import CalendarFeed, Dispatch, Task
from monitoring.scrubbing import SUBSTITUTE, safe_query
from notifications.models import Notification
from tests.clients import logged_in
from tests.factories import DispatchFactory, EventFactory, TaskFactory, UserFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
# Escapes, a line break, and long enough to fold inside two-octet characters and escapes.
HOSTILE = 'Call, then; "quote"\\ and\nnewline <b>' + "é\\," * 40
CONTROLS = "Bell\x07 and\x0bvertical tab"


@pytest.fixture(autouse=True)
def now(time_machine):
    time_machine.move_to(NOW, tick=False)


def make_feed(client) -> str:
    page = client.post("/me/calendar-feed", {"action": "create"}).content.decode()
    start = page.index("/feeds/calendar.ics?key=")
    return page[start : page.index('"', start)]


def items(rita, north):
    other = UserFactory(username="olga", team=north)
    EventFactory(owner=rita, title=HOSTILE, start_at=NOW + timedelta(days=1))
    DispatchFactory(
        owner=rita, title="Visit Acme", scheduled_at=NOW, due_at=NOW + timedelta(hours=2)
    )
    TaskFactory(owner=rita, title="Send the offer", due_at=NOW + timedelta(hours=3))
    EventFactory(owner=rita, title=CONTROLS, start_at=NOW + timedelta(days=2))
    TaskFactory(owner=rita, title="Done already", status=Task.Status.DONE)
    TaskFactory(owner=other, title="Olga's task", due_at=NOW)
    DispatchFactory(owner=rita, title="Cancelled visit", status=Dispatch.Status.CANCELLED)
    Notification.objects.create(
        user=rita,
        source="rule:1",
        object_kind="task",
        object_id=1,
        title="Stale opportunity",
        expires_at=NOW,
        blocking=True,
        grace_deadline=NOW + timedelta(days=2),
        visible_from=NOW,
        created_at=NOW,
    )


def test_the_feed_holds_the_owners_items_read_by_two_parsers(rita, north):
    url = make_feed(logged_in(rita))  # before the blocking notification: it would gate /me/
    items(rita, north)

    response = Client().get(url)  # a calendar client: no session

    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    parsed = icalendar.Calendar.from_ical(response.content)
    events = {str(e["SUMMARY"]): e for e in parsed.walk("VEVENT")}
    assert set(events) == {
        HOSTILE,
        "Bell  and vertical tab",  # control characters are not iCalendar text
        "Visit Acme",
        "Due: Send the offer",
        "Blocking deadline: Stale opportunity",
    }
    assert events["Visit Acme"].decoded("DTEND") == NOW + timedelta(hours=2)
    assert [a["ACTION"] for a in events["Due: Send the offer"].walk("VALARM")] == ["DISPLAY"]
    deadline = events["Blocking deadline: Stale opportunity"]
    assert deadline.decoded("DTSTART") == NOW + timedelta(days=2)
    assert deadline.walk("VALARM")[0].decoded("TRIGGER") == -timedelta(hours=1)

    other = vobject.readOne(response.content.decode())
    read = {e.summary.value: e for e in other.vevent_list}
    assert set(read) == set(events)
    assert read[HOSTILE].dtstart.value == NOW + timedelta(days=1)
    assert read["Due: Send the offer"].valarm.trigger.value == -timedelta(minutes=15)


def test_the_address_is_shown_once_and_only_its_hash_is_kept(rita):
    client = logged_in(rita)
    made = client.post("/me/calendar-feed", {"action": "create"})
    assert "no-store" in made["Cache-Control"]
    url = make_feed(client)
    key = url.split("key=")[1]

    assert len(CalendarFeed.objects.get().key_hash) == 64
    assert not CalendarFeed.objects.filter(key_hash=key).exists()
    assert key not in client.get("/me/").content.decode()
    assert "not read yet" in client.get("/me/").content.decode()
    Client().get(url)
    assert "last read" in client.get("/me/").content.decode()


def test_replacing_or_revoking_ends_the_old_address(rita):
    client = logged_in(rita)
    first = make_feed(client)
    second = make_feed(client)

    assert Client().get(first).status_code == 404
    assert Client().get(second).status_code == 200
    client.post("/me/calendar-feed", {"action": "revoke"})
    assert Client().get(second).status_code == 404
    assert not CalendarFeed.objects.exists()


@pytest.mark.parametrize("key", ["", "x", "x" * 43, "x" * 10_000])
def test_a_wrong_key_finds_nothing_and_is_never_logged(rita, key, caplog):
    make_feed(logged_in(rita))

    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = Client().get("/feeds/calendar.ics", {"key": key})

    assert response.status_code == 404
    assert "Not Found: /feeds/calendar.ics" in caplog.text  # the refusal is logged,
    assert "key=" not in caplog.text and "xxxx" not in caplog.text  # its key is not


def test_an_inactive_users_feed_is_gone(rita):
    url = make_feed(logged_in(rita))
    rita.is_active = False
    rita.save()

    assert Client().get(url).status_code == 404


@pytest.mark.parametrize("rows", [1, 30])
def test_the_feed_costs_the_same_queries_whatever_the_data(rows, rita, django_assert_num_queries):
    for n in range(rows):
        EventFactory(owner=rita, start_at=NOW + timedelta(hours=n))
        TaskFactory(owner=rita, due_at=NOW + timedelta(hours=n))
    url = make_feed(logged_in(rita))
    client = Client()
    client.get(url)

    # the feed and its owner; events, visits, tasks, deadlines
    with django_assert_num_queries(5):
        assert client.get(url).status_code == 200


@pytest.mark.parametrize(
    "line",
    [
        "A" * 200,
        "é" * 100,
        "SUMMARY:" + "\\," * 80,
        "SUMMARY:" + "\\\\" * 60,
        "SUMMARY:a" + "\\\\" * 60,
        "x" * 75,
        "x" * 76,
        "€" * 25 + "x",
    ],
)
def test_a_long_line_folds_into_lines_of_75_octets_that_unfold_to_it(line):
    physical = fold(line).split(b"\r\n")

    assert all(len(part) <= 75 for part in physical)
    assert all(part.startswith(b" ") for part in physical[1:])
    for part in physical[:-1]:  # an escape (a backslash and what it escapes) stays whole
        assert (len(part) - len(part.rstrip(b"\\"))) % 2 == 0, part
    assert b"".join([physical[0], *(part[1:] for part in physical[1:])]).decode() == line


def test_a_client_may_ask_for_the_head_first_and_the_settings_take_no_get(rita):
    url = make_feed(logged_in(rita))

    assert Client().head(url).status_code == 200
    assert logged_in(rita).get("/me/calendar-feed").status_code == 405


def test_items_already_past_carry_no_reminder_and_the_coming_ones_come_first(rita, monkeypatch):
    url = make_feed(logged_in(rita))
    for days in (-20, -10, -5):
        TaskFactory(owner=rita, title=f"Past {days}", due_at=NOW + timedelta(days=days))
    TaskFactory(owner=rita, title="Coming", due_at=NOW + timedelta(days=1))
    monkeypatch.setattr(feeds, "PER_KIND", 2)

    parsed = icalendar.Calendar.from_ical(Client().get(url).content)

    found = {str(e["SUMMARY"]): bool(e.walk("VALARM")) for e in parsed.walk("VEVENT")}
    assert found == {"Due: Coming": True, "Due: Past -5": False}  # the latest of the past


def test_the_request_log_of_make_run_leaves_the_key_out():
    handler = logging.getLogger("django.server").handlers[0]
    line = "GET /feeds/calendar.ics?key=SECRETKEY&x=1 HTTP/1.1"
    record = logging.LogRecord(
        "django.server", logging.INFO, __file__, 1, '"%s" %s %s', (line, "200", "512"), None
    )

    assert handler.filter(record)
    assert record.getMessage() == f'"GET /feeds/calendar.ics?key={SUBSTITUTE}&x=1 HTTP/1.1" 200 512'


def test_sentry_is_sent_no_key():
    url = "https://vigil.example/feeds/calendar.ics?key=SECRETKEY"
    event = {"request": {"url": url, "query_string": "x=1&key=SECRETKEY"}}

    sent = vigil_settings._without_query_string(event, None)

    assert sent["request"] == {
        "url": f"https://vigil.example/feeds/calendar.ics?key={SUBSTITUTE}",
        "query_string": f"x=1&key={SUBSTITUTE}",
    }


def test_an_administrator_revokes_a_leaked_feed_in_the_admin(rita):
    ada = UserFactory(username="ada", role="admin", is_staff=True, is_superuser=True)
    url = make_feed(logged_in(rita))
    feed = CalendarFeed.objects.get()

    deleted = logged_in(ada).post(f"/admin/crm/calendarfeed/{feed.pk}/delete/", {"post": "yes"})

    assert deleted.status_code == 302 and Client().get(url).status_code == 404


@pytest.mark.parametrize("line", ["?a" * 32_768, "?key=" + "k" * 65_531, "?a=b&" * 13_107])
def test_a_request_line_of_the_longest_length_is_masked_in_one_pass(line):
    # runserver reads request lines of up to 65,536 bytes; a parameter's name stops at the
    # next "?", so each part of the line is read once.
    masked = safe_query(line)

    assert "kkkk" not in masked
    assert masked.count("=") == line.count("=")
