"""The daily bug report: everything found wrong the day before as_of, emailed once to the
administrators and kept as a page in the admin; "all clear" when nothing is."""

import logging
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import PeriodicTask

from crm import registry, runner, slots
from crm.models import RPH, JobRun, User
from mailsync.models import Mailbox, OutboxMessage
from monitoring import deadman
from monitoring.jobs import bug_report
from monitoring.models import BugReport, ErrorEvent
from tests.factories import DispatchFactory, InvoiceFactory, TaskFactory, TeamFactory, UserFactory

AS_OF = datetime(2027, 3, 2, 7, 0, tzinfo=UTC)
DAY = date(2027, 3, 1)
ON_THE_DAY = datetime(2027, 3, 1, 15, 0, tzinfo=UTC)


@pytest.fixture
def every_job_ran(db):
    """Each scheduled job succeeded for the latest slot its crontab called for."""
    call_command("sync_schedules", verbosity=0)

    def ran(skip=()):
        for s in deadman.schedules():
            if s.enabled and s.job not in skip:
                slot = slots.latest_slot(s.expression, s.tz, AS_OF)
                JobRun.objects.create(
                    job=s.job,
                    trigger=JobRun.Trigger.SCHEDULE,
                    slot=slot,
                    as_of=slot,
                    status=JobRun.Status.SUCCEEDED,
                    started_at=slot,
                    finished_at=slot,
                )

    return ran


def event(title, first_seen, on_day=1, **fields):
    return ErrorEvent.objects.create(
        fingerprint=title.ljust(64, "0")[:64],
        title=title,
        logger="tests",
        level="ERROR",
        message=f"RuntimeError: {title}",
        count=fields.pop("count", on_day),
        first_seen=first_seen,
        last_seen=ON_THE_DAY,
        day=DAY,
        day_count=on_day,
        **fields,
    )


def counts(result):
    return {k: v for k, v in result.items() if v and k != "emailed"}


@pytest.mark.django_db
def test_a_quiet_day_is_all_clear(administrator, every_job_ran):
    every_job_ran()

    result = bug_report(AS_OF)

    assert counts(result) == {}
    assert result["emailed"] == 1
    report = BugReport.objects.get()
    assert (report.day, report.all_clear) == (DAY, True)
    email = OutboxMessage.objects.get(source="bug_report")
    assert email.key == "bug-report:2027-03-01"
    assert email.to == ["ada@vigil.example"]
    assert email.subject == "[Vigil] Bug report for Mon 01 Mar 2027: all clear"
    assert "All clear: nothing went wrong on Monday 1 March 2027" in email.text_body
    assert "All clear" in email.html_body


@pytest.mark.django_db
def test_the_days_errors_are_listed_new_fingerprints_first_with_counts(
    administrator, every_job_ran
):
    every_job_ran()
    event("Old trouble", first_seen=ON_THE_DAY - timedelta(days=20), on_day=5, count=40)
    new = event("Fresh trouble", first_seen=ON_THE_DAY, on_day=2)
    event("Regressed trouble", first_seen=ON_THE_DAY - timedelta(days=9), regression=True)
    ErrorEvent.objects.create(  # only seen two days before: not the day's
        fingerprint="x" * 64,
        title="Not that day",
        logger="tests",
        level="ERROR",
        first_seen=ON_THE_DAY - timedelta(days=2),
        last_seen=ON_THE_DAY - timedelta(days=2),
        day=DAY - timedelta(days=1),
    )

    result = bug_report(AS_OF)

    assert counts(result) == {"errors": 3}
    text = OutboxMessage.objects.get(source="bug_report").text_body
    assert text.index("Fresh trouble") < text.index("Regressed trouble") < text.index("Old trouble")
    assert "[new] Fresh trouble: 2× on the day, 2× in all" in text
    assert "[regression] Regressed trouble" in text
    assert "Old trouble: 5× on the day, 40× in all" in text
    assert "Not that day" not in text
    assert f"http://testserver/admin/monitoring/errorevent/{new.pk}/change/" in text.replace(
        "http://127.0.0.1:8000", "http://testserver"
    )
    assert BugReport.objects.get().subject == "[Vigil] Bug report for Mon 01 Mar 2027: 3 problems"


@pytest.mark.django_db
def test_failed_runs_of_the_day_and_disabled_jobs_are_reported(administrator, every_job_ran):
    every_job_ran()
    for hour, status, error in (
        (2, JobRun.Status.ABANDONED, runner.ABANDONED),
        (3, JobRun.Status.FAILED, "Traceback (most recent call last):\n...\nKeyError: 'x'"),
        (4, JobRun.Status.FAILED, "Traceback (most recent call last):\n...\nDataError: overflow"),
    ):
        JobRun.objects.create(
            job="finance_penalties",
            trigger=JobRun.Trigger.MANUAL,
            as_of=ON_THE_DAY,
            status=status,
            error=error,
            started_at=datetime(2027, 3, 1, hour, tzinfo=UTC),
        )
    PeriodicTask.objects.filter(name="parc_generate").update(enabled=False)

    result = bug_report(AS_OF)

    assert counts(result) == {"failed_runs": 3, "disabled_jobs": 1}
    text = BugReport.objects.get().text
    assert "finance_penalties: 3 failed or abandoned run(s); last: DataError: overflow" in text
    assert "parc_generate: disabled after repeated failures or by an administrator" in text


@pytest.mark.django_db
def test_the_dead_man_switch_reports_a_job_that_stopped(administrator, every_job_ran):
    every_job_ran(skip={"notifications_daily"})
    two_days_ago = datetime(2027, 2, 28, 6, 0, tzinfo=UTC)
    JobRun.objects.create(
        job="notifications_daily",
        trigger=JobRun.Trigger.SCHEDULE,
        slot=two_days_ago,
        as_of=two_days_ago,
        status=JobRun.Status.SUCCEEDED,
        started_at=two_days_ago,
    )

    result = bug_report(AS_OF)

    assert counts(result) == {"overdue_jobs": 1}
    assert (
        "notifications_daily: expected a run for 2027-03-02 06:00; last success for "
        "2027-02-28 06:00. Are Beat and a worker running?"
    ) in BugReport.objects.get().text


@pytest.mark.django_db
def test_the_dead_man_switch_reports_a_job_that_never_ran(administrator, every_job_ran, make_job):
    every_job_ran()
    make_job("test_weekly_cleanup", lambda as_of, *, dry_run=False: {}, schedule="0 5 * * 1")
    call_command("sync_schedules", verbosity=0)

    result = bug_report(AS_OF)

    assert counts(result) == {"overdue_jobs": 1}
    assert (
        "[never ran] test_weekly_cleanup: expected a run for 2027-03-01 05:00; it never ran "
        "on schedule" in BugReport.objects.get().text
    )


@pytest.mark.django_db
def test_a_job_gets_a_margin_to_finish_before_it_counts_as_late(every_job_ran):
    every_job_ran(skip={"bug_report"})
    yesterday = AS_OF - timedelta(days=1)
    JobRun.objects.create(
        job="bug_report",
        trigger=JobRun.Trigger.SCHEDULE,
        slot=yesterday,
        as_of=yesterday,
        status=JobRun.Status.SUCCEEDED,
        started_at=yesterday,
    )
    schedule = next(s for s in deadman.schedules() if s.job == "bug_report")

    # Its 07:00 run has an hour; the every-minute outbox, ten minutes.
    assert deadman.overdue(schedule, AS_OF + timedelta(minutes=59)) is None
    assert deadman.overdue(schedule, AS_OF + timedelta(minutes=61)).expected == AS_OF
    outbox = next(s for s in deadman.schedules() if s.job == "outbox_send")
    assert deadman.margin(outbox.expression, outbox.tz, AS_OF) == timedelta(minutes=10)


@pytest.mark.django_db
def test_email_that_failed_for_good_or_is_stuck_sending_is_reported(administrator, every_job_ran):
    every_job_ran()

    def message(key, **fields):
        return OutboxMessage.objects.create(
            key=key,
            source="test",
            from_email="vigil@localhost",
            to=["ops@client.example"],
            subject=f"About {key}",
            text_body="x",
            message_id=f"<{key}@vigil.localhost>",
            next_attempt_at=AS_OF,
            created_at=AS_OF - timedelta(days=1),
            **fields,
        )

    message("refused", status="failed", last_error="SMTPRecipientsRefused: 550 no such user")
    message("stuck", status="sending", claimed_until=AS_OF - timedelta(hours=2))
    message("being-sent", status="sending", claimed_until=AS_OF + timedelta(minutes=5))
    message("sent", status="sent")

    result = bug_report(AS_OF)

    assert counts(result) == {"failed_emails": 1, "stuck_emails": 1}
    text = BugReport.objects.get().text
    assert "About refused → ops@client.example: SMTPRecipientsRefused: 550 no such user" in text
    assert (
        "About stuck → ops@client.example: its sender's claim ran out at 2027-03-02 05:00" in text
    )
    assert "being-sent" not in text


def unknown_currency():
    InvoiceFactory(number="INV-CUR", currency="ZZZ")  # as a bulk import could write it
    return "INV-CUR: currency 'ZZZ' is not ISO 4217"


def voucher_in_the_future():
    InvoiceFactory(number="INV-FUT", voucher_date=date(2027, 3, 9))
    return "INV-FUT: voucher date 2027-03-09 is in the future"


def task_of_a_deactivated_owner():
    owner = UserFactory(username="gone", team=TeamFactory(name="North"), is_active=False)
    TaskFactory(title="Call back", owner=owner)
    return "Call back: its owner gone is deactivated"


def task_of_an_owner_in_no_team():
    TaskFactory(title="Send quote", owner=UserFactory(username="loner"))
    return "Send quote: its owner loner is in no team"


def dispatch_to_an_empty_team():
    owner = UserFactory(username="disp", team=TeamFactory(name="North"))
    DispatchFactory(title="Inspect", owner=owner, team=TeamFactory(name="Ghosts", kind="visiting"))
    return "Inspect: its team Ghosts has no active member"


def user_who_reports_to_themselves():
    me = UserFactory(username="narcissus")
    User.objects.filter(pk=me.pk).update(manager=me)
    return "narcissus: reports to themselves"


def users_in_a_circle():
    a, b, c = (UserFactory(username=n) for n in ("alpha", "beta", "gamma"))
    User.objects.filter(pk=a.pk).update(manager=b)
    User.objects.filter(pk=b.pk).update(manager=c)
    User.objects.filter(pk=c.pk).update(manager=a)
    UserFactory(username="delta", manager=a)  # below the circle, not in it
    return "alpha: is in a reporting circle"


def lead_in_nurture_without_enrollment():
    RPH.objects.create(name="Lena Lead", status="nurture_p2", status_changed_at=ON_THE_DAY)
    return "Lena Lead: never enrolled (is a nurture sequence active?)"


def mailbox_to_reconnect():
    Mailbox.objects.create(
        owner=UserFactory(username="mbx", team=TeamFactory(name="North")),
        provider="imap",
        auth="password",
        address="mbx@vigil.example",
        username="mbx",
        imap_host="imap.vigil.example",
        status="reconnect",
        last_error="AUTHENTICATIONFAILED",
        created_at=ON_THE_DAY,
    )
    return "mbx@vigil.example (mbx): AUTHENTICATIONFAILED"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("seed", "key", "total"),
    [
        (unknown_currency, "invoices", 1),
        (voucher_in_the_future, "invoices", 1),
        (task_of_a_deactivated_owner, "tasks", 1),
        (task_of_an_owner_in_no_team, "tasks", 1),
        (dispatch_to_an_empty_team, "dispatches", 1),
        (user_who_reports_to_themselves, "reporting", 1),
        (users_in_a_circle, "reporting", 3),
        (lead_in_nurture_without_enrollment, "nurture", 1),
        (mailbox_to_reconnect, "mailboxes", 1),
    ],
)
def test_each_data_integrity_scan_finds_its_bad_data(
    seed, key, total, administrator, every_job_ran
):
    every_job_ran()
    finding = seed()

    result = bug_report(AS_OF)

    assert counts(result) == {key: total}
    assert finding in BugReport.objects.get().text


@pytest.mark.django_db
def test_the_email_and_the_admin_page_show_the_same_report_with_links(
    administrator, every_job_ran, client
):
    every_job_ran()
    unknown_currency()
    client.force_login(administrator)

    bug_report(AS_OF)

    report = BugReport.objects.get()
    email = OutboxMessage.objects.get(source="bug_report")
    assert report.html in email.html_body
    assert "/admin/finance/invoice/" in report.html
    page = client.get(f"/admin/monitoring/bugreport/{report.pk}/change/")
    assert page.status_code == 200
    assert report.html in page.content.decode()
    assert f"/admin/monitoring/bugreport/{report.pk}/change/" in email.text_body


@pytest.mark.django_db
def test_a_rerun_of_the_day_stores_and_sends_nothing_more(administrator, every_job_ran):
    every_job_ran()

    first, second = bug_report(AS_OF), bug_report(AS_OF)

    assert (first["emailed"], second["emailed"]) == (1, 0)
    assert BugReport.objects.count() == 1
    assert OutboxMessage.objects.filter(source="bug_report").count() == 1


@pytest.mark.django_db
def test_a_dry_run_counts_and_keeps_nothing(administrator, every_job_ran):
    every_job_ran()
    unknown_currency()

    result = bug_report(AS_OF, dry_run=True)

    assert counts(result) == {"invoices": 1}
    assert not BugReport.objects.exists()
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_the_report_costs_the_same_queries_however_much_is_wrong(administrator, every_job_ran):
    every_job_ran()

    def queries():
        BugReport.objects.all().delete()
        OutboxMessage.objects.all().delete()
        with CaptureQueriesContext(connection) as captured:
            bug_report(AS_OF)
        return len(captured)

    few = queries()
    for seed in (unknown_currency, task_of_an_owner_in_no_team, users_in_a_circle):
        seed()
    for n in range(3):
        event(f"Trouble {n}", first_seen=ON_THE_DAY)

    assert queries() == few


@pytest.mark.django_db
def test_a_report_for_a_day_not_over_yet_is_refused_without_force(administrator, time_machine):
    """Run on Saturday 5 Dec for Tuesday 8 Dec, it would store and email Monday 7 Dec's report
    before Monday happened; the real run on the 8th would then find its key taken."""
    time_machine.move_to(datetime(2026, 12, 5, 9, 0, tzinfo=UTC), tick=False)

    with pytest.raises(CommandError) as refused:
        call_command("runjob", "bug_report", "--as-of", "2026-12-08T07:00")

    assert str(refused.value) == (
        "as_of 2026-12-08T07:00:00+00:00 is in the future, and bug_report emails the "
        "administrators, which cannot be undone; use --dry-run to preview it or --force to run "
        "it anyway"
    )
    assert not JobRun.objects.exists()
    assert not BugReport.objects.exists() and not OutboxMessage.objects.exists()

    time_machine.move_to(datetime(2026, 12, 7, 15, 0, tzinfo=UTC), tick=False)
    logging.getLogger("tests.monitoring.billing").error("invoice %s has no account", 1)
    time_machine.move_to(datetime(2026, 12, 8, 7, 0, tzinfo=UTC), tick=False)
    call_command("runjob", "bug_report", stdout=StringIO())

    report = BugReport.objects.get()
    assert (report.day, report.counts["errors"]) == (date(2026, 12, 7), 1)
    email = OutboxMessage.objects.get(source="bug_report")
    assert email.subject.startswith("[Vigil] Bug report for Mon 07 Dec 2026: ")
    assert "invoice %s has no account" in email.text_body


@pytest.mark.django_db
@pytest.mark.parametrize("option", ["--dry-run", "--force"])
def test_an_operator_may_preview_or_force_a_report_ahead(option, administrator, time_machine):
    time_machine.move_to(datetime(2026, 12, 5, 9, 0, tzinfo=UTC), tick=False)

    call_command("runjob", "bug_report", "--as-of", "2026-12-08T07:00", option, stdout=StringIO())

    assert JobRun.objects.get().status == JobRun.Status.SUCCEEDED
    assert OutboxMessage.objects.filter(source="bug_report").count() == (option == "--force")


def test_bug_report_is_a_daily_job_at_seven():
    assert registry.get("bug_report").schedule == "0 7 * * *"
