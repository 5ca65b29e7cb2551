"""With a send window (Admin → Nurture send settings), each step goes out inside the window of
the lead's own day, in the lead's time zone, never on a public holiday of its country: the
same day when its window is still to come, else the next window. The company is in Berlin;
the leads are elsewhere."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import RPH, WorkingCalendar
from mailsync.models import OutboxMessage
from nurture.jobs import nurture_send
from nurture.models import Enrollment, SendSettings, SentStep
from tests.clients import logged_in
from tests.factories import AccountFactory, ContactFactory
from tests.nurture.conftest import RPHFactory, make_sequence

NEW_YORK = ZoneInfo("America/New_York")


def at(year, month, day, hour, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture(autouse=True)
def berlin(settings):
    settings.TIME_ZONE = "Europe/Berlin"


def window(days="1234567", starts=time(9), ends=time(17), **more) -> SendSettings:
    return SendSettings.objects.create(
        window=True, window_days=days, window_starts=starts, window_ends=ends, **more
    )


def lead_entering(when: datetime, **fields) -> RPH:
    return RPHFactory(status=RPH.Status.NURTURE_P2, status_changed_at=when, **fields)


def sent_at(rph: RPH) -> list[datetime]:
    steps = SentStep.objects.filter(enrollment__rph=rph, skipped="").order_by("at")
    return list(steps.values_list("at", flat=True))


def runs(start: datetime, end: datetime, every=timedelta(minutes=15)) -> dict[datetime, int]:
    """nurture_send every quarter hour from `start` to `end`: {run: emails sent} for the runs
    that sent some."""
    sent = {}
    while start <= end:
        if count := nurture_send(start)["sent"]:
            sent[start] = count
        start += every
    return sent


@pytest.mark.django_db
def test_a_step_due_on_the_day_new_york_changes_clocks_goes_at_nine_new_york_time():
    """Sunday 8 March 2026, 02:00 EST → 03:00 EDT; Berlin changes on the 29th. The step due
    that Sunday goes at 09:00 in New York: 13:00 UTC, not 14:00 as the day before."""
    make_sequence(waits=(1, 3))
    window()
    # Saturday 10:00 in New York: the first step falls on Sunday.
    rph = lead_entering(at(2026, 3, 7, 15), time_zone="America/New_York")

    sent = runs(at(2026, 3, 7, 12), at(2026, 3, 8, 23, 45))

    assert sent == {at(2026, 3, 8, 13): 1}
    assert sent_at(rph)[0].astimezone(NEW_YORK).time() == time(9)
    assert sent_at(rph)[0].astimezone(ZoneInfo("Europe/Berlin")).time() == time(14)


@pytest.mark.django_db
def test_a_step_due_on_a_day_without_a_window_waits_across_the_change_for_the_next_one():
    """Tuesday to Thursday only: the step due on Sunday 8 March (the US change) waits for
    Tuesday 09:00 EDT, 13:00 UTC; a week before, Tuesday 09:00 EST was 14:00 UTC."""
    make_sequence(waits=(1, 3))
    window(days="234")
    rph = lead_entering(at(2026, 3, 7, 15), time_zone="America/New_York")

    first = nurture_send(at(2026, 3, 8, 0))
    enrollment = Enrollment.objects.get(rph=rph)

    assert first["sent"] == 0 and first["windowed"] == 1
    assert (enrollment.send_after, enrollment.send_until) == (
        at(2026, 3, 10, 13),
        at(2026, 3, 10, 21),
    )
    assert nurture_send(at(2026, 3, 9, 15))["sent"] == 0  # Monday in New York's day
    assert nurture_send(at(2026, 3, 10, 12, 45))["sent"] == 0  # 08:45 EDT
    assert nurture_send(at(2026, 3, 10, 13))["sent"] == 1
    assert nurture_send(at(2026, 3, 10, 13, 15))["sent"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("skip_holidays", "goes_on"), [(True, 27), (False, 26)])
def test_thanksgiving_in_the_leads_country_moves_the_step_to_the_next_window(
    skip_holidays, goes_on
):
    """Thursday 26 November 2026 is Thanksgiving in the US (not in Berlin): a step due then
    goes on Friday at 09:00 in New York (14:00 UTC, EST), unless holidays are not skipped."""
    make_sequence(waits=(1,))
    window(days="12345", skip_holidays=skip_holidays)
    rph = lead_entering(at(2026, 11, 25, 15), country="US")  # its zone: its country's

    sent = runs(at(2026, 11, 26, 0), at(2026, 11, 27, 23, 45), every=timedelta(hours=1))

    assert sent == {at(2026, 11, goes_on, 14): 1}
    assert sent_at(rph) == [at(2026, 11, goes_on, 14)]


@pytest.mark.django_db
def test_a_lead_with_no_zone_and_no_country_is_emailed_in_the_companys_day_and_holidays():
    """Berlin's 09:00 (08:00 UTC in March), and the company's holiday region: a step due on
    Good Friday 3 April 2026 goes on the Tuesday after Easter Monday (07:00 UTC, CEST)."""
    make_sequence(waits=(1, 32))  # the second step: Friday 3 April
    window(days="12345")
    WorkingCalendar.objects.create(holiday_country="DE")
    rph = lead_entering(at(2026, 3, 1, 10))

    assert runs(at(2026, 3, 2, 7), at(2026, 3, 2, 10)) == {at(2026, 3, 2, 8): 1}
    assert runs(at(2026, 4, 2, 7), at(2026, 4, 7, 10), every=timedelta(hours=1)) == {
        at(2026, 4, 7, 7): 1
    }
    assert sent_at(rph) == [at(2026, 3, 2, 8), at(2026, 4, 7, 7)]


@pytest.mark.django_db
def test_a_lead_is_emailed_in_its_contacts_accounts_country():
    """Its account is in Japan: 09:00 in Tokyo is midnight UTC, on Tokyo's day."""
    make_sequence(waits=(0,))
    window()
    account = AccountFactory(country="JP")
    rph = lead_entering(at(2026, 3, 2, 1), contact=ContactFactory(account=account))

    sent = runs(at(2026, 3, 2, 1), at(2026, 3, 3, 12), every=timedelta(hours=1))

    # Entered at 10:00 in Tokyo on the 2nd: the rest of that day's window, from the next run.
    assert sent == {at(2026, 3, 2, 1): 1}
    assert sent_at(rph)[0].astimezone(ZoneInfo("Asia/Tokyo")).time() == time(10)


@pytest.mark.django_db
def test_a_step_due_after_the_window_closed_goes_in_the_next_days_window():
    make_sequence(waits=(0,))
    window()
    rph = lead_entering(at(2026, 3, 2, 23), time_zone="America/New_York")  # 18:00 EST

    sent = runs(at(2026, 3, 2, 23), at(2026, 3, 3, 23), every=timedelta(hours=1))

    assert sent == {at(2026, 3, 3, 14): 1}  # 09:00 EST
    assert sent_at(rph) == [at(2026, 3, 3, 14)]


@pytest.mark.django_db
def test_catching_up_sends_one_step_a_day_each_in_the_leads_window():
    make_sequence(waits=(1, 1, 1), final_wait=30)
    window(starts=time(10), ends=time(12))
    rph = lead_entering(at(2026, 3, 1, 15), time_zone="America/New_York")

    # Down until Thursday the 5th: the three steps fell due on the 2nd, 3rd and 4th.
    sent = runs(at(2026, 3, 5, 0), at(2026, 3, 8, 23), every=timedelta(hours=1))

    assert sent == {at(2026, 3, 5, 15): 1, at(2026, 3, 6, 15): 1, at(2026, 3, 7, 15): 1}
    assert len(sent_at(rph)) == 3


@pytest.mark.django_db
def test_a_run_again_in_the_same_window_sends_nothing_twice():
    make_sequence(waits=(0, 0))
    window()
    for _ in range(3):
        lead_entering(at(2026, 3, 2, 1), time_zone="Europe/London")

    first = nurture_send(at(2026, 3, 2, 9))
    again = [nurture_send(at(2026, 3, 2, 9, m))["sent"] for m in (0, 15, 30)]

    assert first["sent"] == 3 and again == [0, 0, 0]
    assert OutboxMessage.objects.count() == SentStep.objects.count() == 3


@pytest.mark.django_db
def test_the_number_of_queries_does_not_grow_with_enrollments():
    make_sequence(waits=(0,))
    window()

    def queries_for(leads: int, day: int) -> int:
        for _ in range(leads):
            lead_entering(at(2026, 3, day, 1), time_zone="Europe/London")
        with CaptureQueriesContext(connection) as queries:
            counts = nurture_send(at(2026, 3, day, 10))
        assert counts["sent"] == leads
        return len(queries)

    few = queries_for(3, 2)
    RPH.objects.all().delete()
    # One UPDATE per distinct window: the same for 3 leads in London as for 40.
    assert few == queries_for(40, 3)


# --- Where the window comes from changes --------------------------------------------------------


@pytest.mark.django_db
def test_a_lead_given_another_time_zone_on_its_page_is_emailed_in_that_one(client, rep):
    make_sequence(waits=(1,))
    window()
    rph = lead_entering(at(2026, 3, 1, 10), owner=rep, time_zone="America/New_York")
    nurture_send(at(2026, 3, 1, 12))  # its window: Monday 09:00 in New York
    assert Enrollment.objects.get(rph=rph).send_after == at(2026, 3, 2, 14)
    client.force_login(rep)

    # Typed as a user would in the field (it suggests the zones, it does not list them).
    form = {"name": rph.name, "email": rph.email, "time_zone": "asia/tokyo", "country": "JP"}
    response = client.post(reverse("nurture:edit", args=[rph.pk]), form)

    assert response.status_code == 302
    assert Enrollment.objects.get(rph=rph).send_after is None  # worked out again
    assert runs(at(2026, 3, 1, 12), at(2026, 3, 2, 23), every=timedelta(hours=1)) == {
        at(2026, 3, 2, 0): 1  # 09:00 in Tokyo
    }
    page = client.get(reverse("nurture:rph", args=[rph.pk])).content.decode()
    assert '<dd id="lead-zone">Asia/Tokyo</dd>' in page
    assert '<dd id="lead-country">JP</dd>' in page


@pytest.mark.django_db
def test_a_bad_time_zone_or_country_on_the_lead_form_gets_one_line(client, rep):
    rph = RPHFactory(owner=rep)
    client.force_login(rep)

    form = {"name": rph.name, "time_zone": "Mars/Olympus", "country": "ZZ"}
    page = client.post(reverse("nurture:edit", args=[rph.pk]), form).content.decode()

    assert "Time zone: “Mars/Olympus” is not a time zone Vigil knows" in page
    assert "Country: “ZZ” is not an ISO 3166 country code" in page
    rph.refresh_from_db()
    assert (rph.time_zone, rph.country) == ("", "")


@pytest.mark.django_db
def test_an_account_moved_to_another_country_moves_its_leads_windows():
    make_sequence(waits=(1,))
    window()
    account = AccountFactory(country="US")
    rph = lead_entering(at(2026, 3, 1, 10), contact=ContactFactory(account=account))
    nurture_send(at(2026, 3, 1, 12))
    assert Enrollment.objects.get(rph=rph).send_after == at(2026, 3, 2, 14)  # New York

    account.country = "GB"
    account.save(update_fields=["country"])

    nurture_send(at(2026, 3, 1, 12, 15))
    assert Enrollment.objects.get(rph=rph).send_after == at(2026, 3, 2, 9)  # London


@pytest.mark.django_db
def test_turning_the_window_off_brings_back_the_companys_eight_oclock():
    make_sequence(waits=(1,))
    settings = window()
    rph = lead_entering(at(2026, 3, 1, 10), time_zone="America/New_York")
    nurture_send(at(2026, 3, 1, 12))
    assert Enrollment.objects.get(rph=rph).send_after is not None

    settings.window = False
    settings.save()

    enrollment = Enrollment.objects.get(rph=rph)
    assert (enrollment.send_after, enrollment.send_until) == (None, None)
    # 08:00 in Berlin is 07:00 UTC in March.
    assert runs(at(2026, 3, 2, 0), at(2026, 3, 2, 23)) == {at(2026, 3, 2, 7): 1}


@pytest.mark.django_db
def test_the_default_settings_are_no_window_and_no_cap():
    settings = SendSettings.current()

    assert not settings.window and not settings.capped
    assert settings.pk is None  # read, not created: two runners would each make one


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"window_days": ""}, "Name at least one day of the window."),
        ({"window_days": "158"}, "Working days are ISO weekday digits"),
        ({"window_ends": time(9)}, "The window ends after it starts, the same day."),
    ],
)
@pytest.mark.django_db
def test_bad_settings_get_one_line(fields, error):
    settings = SendSettings(window=True, **fields)

    with pytest.raises(ValidationError) as refused:
        settings.full_clean()

    assert error in str(refused.value)


@pytest.mark.django_db
def test_the_lead_page_says_when_the_next_step_goes_out(client, rep):
    make_sequence(waits=(1,))
    window()
    account = AccountFactory(country="CA")
    rph = lead_entering(at(2026, 3, 1, 10), owner=rep, contact=ContactFactory(account=account))
    nurture_send(at(2026, 3, 1, 12))
    client.force_login(rep)

    page = client.get(reverse("nurture:rph", args=[rph.pk])).content.decode()

    assert '<dd id="lead-zone">America/Toronto (its account&#x27;s, CA)</dd>' in page
    window_text = page[page.index('id="send-window"') :].split("</dd>")[0]
    assert "Mon 2 Mar 2026 15:00" in window_text  # the reader's time (Berlin's here)
    assert "in the lead's send window (09:00–17:00 America/Toronto)" in window_text


@pytest.mark.django_db
def test_an_administrator_sets_the_window_and_is_warned_of_a_daily_schedule(administrator):
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    from crm.schedules import sync_schedules

    sync_schedules()
    client = logged_in(administrator)
    form = {
        "window": "on",
        "window_days": "234",
        "window_starts": "09:00",
        "window_ends": "17:00",
        "skip_holidays": "on",
        "domain_hourly_cap": "0",
        "mailbox_hourly_cap": "0",
    }

    added = client.post("/admin/nurture/sendsettings/add/", form, follow=True)
    assert "Nurture send settings" in added.content.decode()
    assert "a window opens only when it runs" not in added.content.decode()
    assert SendSettings.current().window_days == "234"
    # An install from before the window kept its daily 08:00: the administrator is told.
    daily = CrontabSchedule.objects.create(minute="0", hour="8", timezone="Europe/Berlin")
    PeriodicTask.objects.filter(name="nurture_send").update(crontab=daily)
    settings = SendSettings.current()
    changed = client.post(f"/admin/nurture/sendsettings/{settings.pk}/change/", form, follow=True)
    assert "runs at “0 8 * * *”: a window opens only when it runs" in changed.content.decode()

    refused = client.post(
        f"/admin/nurture/sendsettings/{settings.pk}/change/", {**form, "window_ends": "08:00"}
    )
    assert refused.status_code == 200
    assert "The window ends after it starts, the same day." in refused.content.decode()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED row claims")
@pytest.mark.django_db(transaction=True)
def test_two_runners_at_once_work_windows_out_and_send_each_step_once(monkeypatch):
    from nurture import sending, windows
    from tests.processes import at_once

    monkeypatch.setattr(sending, "BATCH", 7)
    monkeypatch.setattr(windows, "CHUNK", 5)  # many small chunks, so the runners interleave
    make_sequence(waits=(1, 1, 1), final_wait=1)
    window(starts=time(9), ends=time(12))
    zones = ("America/New_York", "Europe/London", "Asia/Tokyo", "")
    leads = [lead_entering(at(2026, 3, 6, 10), time_zone=zones[n % 4]) for n in range(40)]

    for hour in range(0, 24 * 6):
        assert len(at_once(nurture_send, at(2026, 3, 6, 12) + timedelta(hours=hour))) == 2

    keys = list(OutboxMessage.objects.values_list("key", flat=True))
    assert len(keys) == len(set(keys)) == SentStep.objects.count() == 3 * len(leads)
    assert Enrollment.objects.filter(status=Enrollment.Status.CLOSED).count() == len(leads)
    for rph in leads:  # one a day, each inside 09:00-12:00 of the lead's day
        zone = ZoneInfo(rph.time_zone or "Europe/Berlin")
        local = [moment.astimezone(zone) for moment in sent_at(rph)]
        assert len({moment.date() for moment in local}) == 3
        assert all(time(9) <= moment.time() < time(12) for moment in local)
