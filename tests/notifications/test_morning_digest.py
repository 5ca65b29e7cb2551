"""morning_digest: a user who asked for it gets one email of their day (blocking items first,
then what is due today, then what is overdue) at the start of each working day of their own
calendar, in their own time zone: once, never on a day off, never for a day that is over."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm import registry, runner
from crm.models import Absence, JobRun, Task, User, WorkingCalendar
from mailsync.models import OutboxMessage
from notifications.digest import send_morning_digests
from notifications.models import Notification
from tests.factories import TaskFactory, TeamFactory, UserFactory
from tests.processes import at_once

PARIS, NEW_YORK, BERLIN = (
    ZoneInfo(z) for z in ("Europe/Paris", "America/New_York", "Europe/Berlin")
)
MONDAY, TUESDAY = date(2027, 3, 1), date(2027, 3, 2)  # winter time on both sides of the Atlantic
SITE = "https://crm.example.com"

pytestmark = pytest.mark.django_db


def at(day: date, hour: int, minute: int = 0, zone: ZoneInfo = PARIS) -> datetime:
    return datetime.combine(day, time(hour, minute), zone)


@pytest.fixture(autouse=True)
def company_in_paris(settings, db):
    settings.TIME_ZONE = "Europe/Paris"
    settings.VIGIL_SITE_URL = SITE
    return WorkingCalendar.current()  # Monday to Friday, 09:00 to 17:00


@pytest.fixture
def rita(rita):
    """Rita (a rep of North, in the company's zone) asked for the digest."""
    User.objects.filter(pk=rita.pk).update(morning_digest=True)
    rita.refresh_from_db()
    return rita


def reader(username: str, **fields) -> User:
    return UserFactory(username=username, morning_digest=True, **fields)


def digests(user: User | None = None) -> list[OutboxMessage]:
    sent = OutboxMessage.objects.filter(source="morning_digest").order_by("pk")
    return list(sent.filter(to=[user.email]) if user else sent)


def notification(user: User, task: Task, title: str, *, blocking: bool = False) -> Notification:
    return Notification.objects.create(
        user=user,
        source="rule:1",
        object_kind="task",
        object_id=task.pk,
        title=title,
        expires_at=task.due_at,
        blocking=blocking,
        grace_deadline=task.due_at + timedelta(hours=24) if blocking else None,
        visible_from=task.due_at - timedelta(days=1),
        created_at=task.due_at - timedelta(days=1),
    )


# --- Once per working day ------------------------------------------------------------------------


@pytest.mark.parametrize("working_time_counted", [False, True])
def test_the_digest_is_sent_once_per_working_day(rita, company_in_paris, working_time_counted):
    """Whether deadlines count working time or not, the digest follows the user's calendar."""
    company_in_paris.enabled = working_time_counted
    company_in_paris.save()
    TaskFactory(owner=rita, title="Call Acme back", due_at=at(MONDAY, 15))

    first = send_morning_digests(at(MONDAY, 9))
    again = send_morning_digests(at(MONDAY, 9, 15))

    assert first["sent"] == 1 and again["sent"] == 0 and again["already_sent"] == 1
    [monday] = digests()
    assert monday.key == f"digest:{rita.pk}:2027-03-01" and monday.to == ["rita@vigil.example"]

    tuesday = send_morning_digests(at(TUESDAY, 9))

    assert tuesday["sent"] == 1
    assert [m.key for m in digests()] == [monday.key, f"digest:{rita.pk}:2027-03-02"]
    rita.refresh_from_db()
    assert rita.last_digest_on == TUESDAY


def test_the_job_runs_every_quarter_hour_through_the_engine(rita):
    job = registry.get("morning_digest")
    assert job.schedule == "*/15 * * * *" and job.final_effects
    TaskFactory(owner=rita, due_at=at(MONDAY, 15))

    with time_machine.travel(at(MONDAY, 9, 16), tick=False):
        run = runner.run_job("morning_digest", at(MONDAY, 9))
        twice = runner.run_job("morning_digest", at(MONDAY, 9, 15))

    assert run.status == twice.status == JobRun.Status.SUCCEEDED
    assert run.counts["sent"] == 1 and twice.counts["sent"] == 0
    assert len(digests()) == 1


# --- Days off ----------------------------------------------------------------------------------


def test_no_digest_on_a_weekend(rita):
    saturday = date(2027, 3, 6)
    TaskFactory(owner=rita, due_at=at(saturday, 15))

    counts = send_morning_digests(at(saturday, 10))

    assert counts["off_duty"] == 1 and counts["sent"] == 0 and digests() == []
    assert send_morning_digests(at(date(2027, 3, 8), 9))["sent"] == 1  # Monday


def test_no_digest_on_a_public_holiday(rita, company_in_paris):
    company_in_paris.holiday_country = "DE"  # Good Friday is a holiday all over Germany
    company_in_paris.save()
    good_friday = date(2027, 3, 26)
    thursday = good_friday - timedelta(days=1)
    TaskFactory(owner=rita, due_at=at(thursday, 15))

    assert send_morning_digests(at(good_friday, 10))["off_duty"] == 1
    assert digests() == []
    assert send_morning_digests(at(thursday, 10))["sent"] == 1


def test_no_digest_on_a_day_of_absence_and_one_the_day_after(rita):
    Absence.objects.create(user=rita, first_day=MONDAY, last_day=MONDAY)
    TaskFactory(owner=rita, due_at=at(MONDAY, 15))

    assert send_morning_digests(at(MONDAY, 10))["off_duty"] == 1
    assert digests() == []
    assert send_morning_digests(at(TUESDAY, 9))["sent"] == 1
    assert digests()[0].key.endswith(":2027-03-02")


# --- When, in whose zone -------------------------------------------------------------------------


def test_not_before_the_working_day_starts_in_the_users_zone():
    nick = reader("nick_ny", time_zone="America/New_York")
    bea = reader("bea_berlin", time_zone="Europe/Berlin")
    for person in (nick, bea):
        TaskFactory(owner=person, title="Quote", due_at=datetime(2027, 3, 1, 15, 30, tzinfo=UTC))

    assert send_morning_digests(at(MONDAY, 8, 59, BERLIN))["sent"] == 0
    assert send_morning_digests(at(MONDAY, 9, 0, BERLIN))["sent"] == 1  # 03:00 in New York
    assert digests(nick) == [] and len(digests(bea)) == 1
    assert send_morning_digests(at(MONDAY, 8, 59, NEW_YORK))["sent"] == 0
    assert send_morning_digests(at(MONDAY, 9, 0, NEW_YORK))["sent"] == 1

    # Each sees the due time in their own zone.
    assert "Quote (due 10:30)" in digests(nick)[0].text_body
    assert "Quote (due 16:30)" in digests(bea)[0].text_body


def test_a_late_run_still_sends_that_day_but_not_after_hours_nor_for_a_day_that_is_over(rita):
    TaskFactory(owner=rita, due_at=at(MONDAY, 15))
    late = reader("larry_late")
    TaskFactory(owner=late, due_at=at(MONDAY, 15))
    User.objects.filter(pk=rita.pk).update(morning_digest=False)

    # The worker was down all morning: Larry gets Monday's digest at 16:45.
    assert send_morning_digests(at(MONDAY, 16, 45))["sent"] == 1
    User.objects.filter(pk=rita.pk).update(morning_digest=True)

    # Rita's Monday ended at 17:00 without one: none that evening, nor the next night.
    assert send_morning_digests(at(MONDAY, 17))["off_duty"] == 2
    assert send_morning_digests(at(TUESDAY, 8, 59))["sent"] == 0
    assert send_morning_digests(at(TUESDAY, 9))["sent"] == 2
    # A run for an earlier moment (by hand, say) sends no digest for Monday.
    assert send_morning_digests(at(MONDAY, 10))["sent"] == 0

    assert sorted(m.key.split(":")[2] for m in digests(rita)) == ["2027-03-02"]
    assert [m.key.split(":")[2] for m in digests(late)] == ["2027-03-01", "2027-03-02"]


def test_a_night_shift_gets_the_digest_when_its_shift_starts_with_the_night_due_today():
    nina = reader("nina_night", time_zone="Europe/Berlin", day_starts=time(22), day_ends=time(6))
    TaskFactory(owner=nina, title="Check the alarms", due_at=at(TUESDAY, 3, 0, BERLIN))
    TaskFactory(owner=nina, title="Tomorrow night", due_at=at(TUESDAY, 23, 0, BERLIN))

    assert send_morning_digests(at(MONDAY, 21, 59, BERLIN))["sent"] == 0
    assert send_morning_digests(at(MONDAY, 22, 0, BERLIN))["sent"] == 1
    assert send_morning_digests(at(TUESDAY, 2, 0, BERLIN))["sent"] == 0  # the same shift

    [monday] = digests()
    assert monday.key == f"digest:{nina.pk}:2027-03-01"
    assert "Due today (1)\n- Check the alarms (due 03:00)" in monday.text_body
    assert "Tomorrow night" not in monday.text_body


def test_a_night_shift_missed_at_its_start_is_sent_before_it_ends():
    nina = reader("nina_night", time_zone="Europe/Berlin", day_starts=time(22), day_ends=time(6))
    TaskFactory(owner=nina, due_at=at(TUESDAY, 3, 0, BERLIN))

    assert send_morning_digests(at(TUESDAY, 5, 45, BERLIN))["sent"] == 1
    assert send_morning_digests(at(TUESDAY, 6, 0, BERLIN))["off_duty"] == 1
    assert [m.key for m in digests()] == [f"digest:{nina.pk}:2027-03-01"]


# --- Concurrent runners --------------------------------------------------------------------------


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SKIP LOCKED and concurrent writers are PostgreSQL's"
)
@pytest.mark.django_db(transaction=True)
def test_two_runners_at_once_send_each_digest_once():
    """Two runs racing past the engine's lock (a manual run beside the scheduled one on two
    hosts, say): the locked user rows still let each digest go once."""
    WorkingCalendar.current()
    readers = [reader(f"reader{n}") for n in range(20)]
    for person in readers:
        TaskFactory(owner=person, due_at=at(MONDAY, 15))

    outcomes = at_once(send_morning_digests, at(MONDAY, 9))

    assert len(outcomes) == 2  # both finished
    assert sum(o["sent"] for o in outcomes) == 20
    assert sorted(m.to[0] for m in digests()) == sorted(p.email for p in readers)
    assert set(User.objects.values_list("last_digest_on", flat=True)) == {MONDAY}


# --- What it says --------------------------------------------------------------------------------


def test_blocking_first_then_due_today_then_overdue_each_linked_and_in_the_users_time(rita):
    stale = TaskFactory(
        owner=rita, title="Send the signed contract", due_at=at(MONDAY, 8) - timedelta(days=2)
    )
    notification(rita, stale, "Task overdue: Send the signed contract", blocking=True)
    TaskFactory(owner=rita, title="Afternoon call", due_at=at(MONDAY, 16))
    TaskFactory(owner=rita, title="Morning call", due_at=at(MONDAY, 10))
    TaskFactory(owner=rita, title="Quote from yesterday", due_at=at(MONDAY, 11) - timedelta(days=1))
    older = TaskFactory(
        owner=rita, title="Visit from last week", due_at=at(MONDAY, 11) - timedelta(days=7)
    )
    TaskFactory(owner=rita, title="Done", due_at=at(MONDAY, 12), status=Task.Status.DONE)
    TaskFactory(title="Someone else's", due_at=at(MONDAY, 12))
    TaskFactory(owner=rita, title="Tomorrow", due_at=at(TUESDAY, 12))

    send_morning_digests(at(MONDAY, 9))

    [mail] = digests()
    assert mail.subject == "[Vigil] Your day, Mon 1 Mar: 1 blocking, 2 due today, 2 overdue"
    for body in (mail.text_body, mail.html_body):
        order = [
            body.index(title)
            for title in (
                "Blocking: deal with these first",
                "Task overdue: Send the signed contract",
                "Due today",
                "Morning call",
                "Afternoon call",
                "Overdue",
                "Quote from yesterday",
                "Visit from last week",
            )
        ]
        assert order == sorted(order)
        assert "Done" not in body and "Someone else" not in body and "Tomorrow" not in body
        # The blocked task is said once: its notification stands for it.
        assert body.count("Send the signed contract") == 1
        assert f"{SITE}/tasks/{older.pk}/" in body
        assert f"{SITE}/me/" in body  # where to switch it off
    assert "Morning call (due 10:00)" in mail.text_body
    assert "Task overdue: Send the signed contract (resolve by Sun 28 Feb 08:00)" in mail.text_body


def test_titles_are_escaped_in_the_html_and_kept_as_written_in_the_text(rita):
    TaskFactory(owner=rita, title='<script>alert("x")</script> & co', due_at=at(MONDAY, 15))

    send_morning_digests(at(MONDAY, 9))

    [mail] = digests()
    assert "<script>" not in mail.html_body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in mail.html_body
    assert '<script>alert("x")</script> & co (due 15:00)' in mail.text_body


def test_a_notice_links_where_it_leads_and_a_reminder_to_its_task(rita):
    task = TaskFactory(owner=rita, title="Call Acme back", due_at=at(MONDAY, 14))
    notification(rita, task, "Reminder: Call Acme back")
    Notification.objects.create(
        user=rita,
        source="mailbox:1",
        object_kind="notice",
        object_id=0,
        title="Reconnect your mailbox",
        link="/mail/mailboxes/",
        expires_at=at(MONDAY, 8),
        visible_from=at(MONDAY, 8),
        created_at=at(MONDAY, 8),
    )

    send_morning_digests(at(MONDAY, 9))

    [mail] = digests()
    assert f"{SITE}/mail/mailboxes/" in mail.html_body
    assert f'<a href="{SITE}/tasks/{task.pk}/">Reminder: Call Acme back</a>' in mail.html_body
    assert mail.text_body.count("Call Acme back") == 1


def test_a_long_section_lists_ten_and_counts_the_rest(rita):
    for n in range(12):
        TaskFactory(owner=rita, title=f"Old task {n}", due_at=at(MONDAY, 8) - timedelta(days=n + 1))

    send_morning_digests(at(MONDAY, 9))

    [mail] = digests()
    assert mail.subject.endswith(": 12 overdue")
    assert "Overdue (12)" in mail.text_body
    assert "Old task 9" in mail.text_body and "Old task 10" not in mail.text_body  # newest first
    assert f"- and 2 more: {SITE}/" in mail.text_body


def test_a_day_with_nothing_in_it_sends_nothing_and_is_done(rita):
    counts = send_morning_digests(at(MONDAY, 9))

    assert counts["empty"] == 1 and counts["sent"] == 0 and digests() == []
    rita.refresh_from_db()
    assert rita.last_digest_on == MONDAY
    # Work added at noon makes no "morning" digest at 12:15.
    TaskFactory(owner=rita, due_at=at(MONDAY, 15))
    assert send_morning_digests(at(MONDAY, 12, 15))["sent"] == 0


def test_who_did_not_ask_or_cannot_sign_in_gets_nothing(rita):
    User.objects.filter(pk=rita.pk).update(morning_digest=False)
    gone = reader("gina_gone", is_active=False)
    for person in (rita, gone):
        TaskFactory(owner=person, due_at=at(MONDAY, 15))

    counts = send_morning_digests(at(MONDAY, 9))

    assert counts["opted_in"] == 0 and digests() == []


def test_a_dry_run_says_what_it_would_send_and_writes_nothing(rita):
    TaskFactory(owner=rita, due_at=at(MONDAY, 15))
    reader("eve_empty")

    counts = send_morning_digests(at(MONDAY, 9), dry_run=True)

    assert counts["sent"] == 1 and counts["empty"] == 1
    assert digests() == [] and set(User.objects.values_list("last_digest_on", flat=True)) == {None}


# --- Cost ----------------------------------------------------------------------------------------


def test_the_queries_are_the_same_for_one_user_and_for_five():
    """Contents come from five queries for everyone due, whatever their number; calendars
    from three."""
    north, south = TeamFactory(name="North"), TeamFactory(name="South")

    def people(prefix: str, count: int) -> None:
        for n in range(count):
            person = reader(f"{prefix}{n}", team=north if n % 2 else south)
            blocked = TaskFactory(owner=person, due_at=at(MONDAY, 8) - timedelta(days=2))
            notification(person, blocked, "Blocked", blocking=True)
            reminded = TaskFactory(owner=person, due_at=at(MONDAY, 11))
            notification(person, reminded, "Reminder")
            TaskFactory(owner=person, due_at=at(MONDAY, 15))
            TaskFactory(owner=person, due_at=at(MONDAY, 8) - timedelta(days=1))
            Absence.objects.create(user=person, first_day=TUESDAY, last_day=TUESDAY)

    def queries(as_of: datetime) -> int:
        with CaptureQueriesContext(connection) as captured:
            counts = send_morning_digests(as_of)
        assert counts["sent"] == counts["opted_in"]
        return len(captured)

    people("one", 1)
    one = queries(at(MONDAY, 9))
    User.objects.update(morning_digest=False)
    people("five", 5)
    five = queries(at(MONDAY, 9))

    assert one == five == 17
