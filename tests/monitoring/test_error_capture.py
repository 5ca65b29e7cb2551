"""Errors captured as they happen: every ERROR record and unhandled exception becomes an error
event grouped by fingerprint, with where it happened, and logging never breaks the caller."""

import json
import logging
import os
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection, transaction

from crm import runner
from crm.models import Team
from monitoring import capture
from monitoring.models import ErrorEvent
from tests.monitoring.test_health import closed_port, needs_postgres
from tests.processes import manage

log = logging.getLogger("tests.monitoring.billing")


def charge(kind=ValueError):
    raise kind("card declined")


def charge_and_log(kind=ValueError):
    try:
        charge(kind)
    except Exception:
        log.exception("charging failed")


@pytest.mark.django_db
def test_records_with_the_same_template_are_one_event_with_a_count():
    log.error("invoice %s has no account", 1)
    log.error("invoice %s has no account", 2)

    event = ErrorEvent.objects.get()
    assert event.count == 2
    assert event.title == "tests.monitoring.billing: invoice %s has no account"
    assert event.message == "invoice 2 has no account"
    assert event.location.startswith("tests/monitoring/test_error_capture.py:")
    assert event.status == ErrorEvent.Status.OPEN


@pytest.mark.django_db
def test_an_exception_is_grouped_by_its_type_and_innermost_frame_in_our_code():
    charge_and_log()
    charge_and_log()
    try:
        json.loads("{")  # raised deep in the standard library, called from here
    except ValueError:
        log.exception("a different message, the same kind of place")

    declined, parse = ErrorEvent.objects.order_by("first_seen")
    assert declined.count == 2
    assert declined.exception_type == "ValueError"
    assert declined.title == "ValueError in charge (tests/monitoring/test_error_capture.py)"
    assert declined.message == "ValueError: card declined"
    assert "Traceback (most recent call last)" in declined.traceback
    assert "charging failed" in declined.traceback
    assert parse.exception_type == "json.decoder.JSONDecodeError"
    assert "in test_an_exception_is_grouped" in parse.location


@pytest.mark.django_db
def test_another_exception_type_at_the_same_place_is_another_event():
    charge_and_log(ValueError)
    charge_and_log(KeyError)

    assert sorted(ErrorEvent.objects.values_list("exception_type", "count")) == [
        ("KeyError", 1),
        ("ValueError", 1),
    ]


@pytest.mark.django_db
def test_each_company_day_is_counted_and_yesterday_survives_midnight(settings):
    settings.TIME_ZONE = "Europe/Madrid"
    with time_machine.travel(datetime(2027, 3, 1, 22, 0, tzinfo=UTC), tick=False):
        log.error("sync stalled")  # 23:00 in Madrid, 1 March
        log.error("sync stalled")
    with time_machine.travel(datetime(2027, 3, 1, 23, 30, tzinfo=UTC), tick=False):
        log.error("sync stalled")  # 00:30 in Madrid, 2 March

    event = ErrorEvent.objects.get()
    assert event.count == 3
    assert event.count_on(date(2027, 3, 1)) == 2
    assert event.count_on(date(2027, 3, 2)) == 1
    assert event.first_seen == datetime(2027, 3, 1, 22, 0, tzinfo=UTC)


@pytest.mark.django_db
@pytest.mark.urls("tests.monitoring.urls")
def test_an_error_in_a_request_records_its_url_method_and_user(client, rep):
    client.force_login(rep)

    client.get("/test/logs/?invoice=7")

    event = ErrorEvent.objects.get()
    assert event.message == "refund of invoice 7 refused"
    assert event.context == {
        "request": {"method": "GET", "url": "/test/logs/?invoice=7", "user_id": rep.pk}
    }


@pytest.mark.django_db
@pytest.mark.urls("tests.monitoring.urls")
def test_an_unhandled_exception_in_a_view_is_captured(client):
    client.raise_request_exception = False

    response = client.post("/test/fails/")

    assert response.status_code == 500
    event = ErrorEvent.objects.get()
    assert event.logger == "django.request"
    assert event.exception_type == "ValueError"
    assert event.location.startswith("tests/monitoring/urls.py:")
    assert event.context["request"] == {"method": "POST", "url": "/test/fails/", "user_id": None}


@pytest.fixture
def failing_job(make_job):
    def reconcile(as_of, *, dry_run=False):
        Team.objects.create(name="written, then rolled back")
        raise ZeroDivisionError("no accounts to split between")

    return make_job("test_reconcile", reconcile)


@pytest.mark.django_db
def test_a_failed_job_records_its_name_and_run(failing_job):
    run = runner.run_job("test_reconcile", datetime(2027, 3, 1, 6, tzinfo=UTC))

    event = ErrorEvent.objects.get()
    assert event.exception_type == "ZeroDivisionError"
    assert "in reconcile" in event.location
    assert event.context == {"job": {"name": "test_reconcile", "run_id": run.pk}}


@pytest.mark.django_db
def test_an_error_in_a_management_command_records_the_command(failing_job):
    with pytest.raises(CommandError, match="test_reconcile failed"):
        call_command("runjob", "test_reconcile", "--as-of", "2027-03-01T06:00:00+00:00")

    event = ErrorEvent.objects.get()
    assert event.context["command"] == "runjob"
    assert event.context["job"]["name"] == "test_reconcile"


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_unhandled_exceptions_in_a_command_and_its_threads_are_stored_and_still_printed(
    subprocess_env,
):
    code = (
        "import threading; t = threading.Thread(target=lambda: {}['ledger']); t.start();"
        " t.join(); raise LookupError('no such ledger')"
    )

    result = manage("shell", "-c", code, env=subprocess_env)

    assert result.returncode == 1
    assert "LookupError: no such ledger" in result.stderr
    assert "KeyError: 'ledger'" in result.stderr
    thread, command = ErrorEvent.objects.order_by("first_seen")
    assert (thread.logger, thread.exception_type) == ("unhandled", "KeyError")
    assert command.logger == "unhandled"
    assert command.level == "CRITICAL"
    assert command.message == "LookupError: no such ledger"
    assert command.context == {"command": "shell"}


@pytest.mark.django_db
def test_a_failed_write_leaves_the_callers_transaction_as_it_was(monkeypatch, capsys):
    monkeypatch.setattr(capture, "event_table", lambda: "monitoring_no_such_table")

    with transaction.atomic():
        Team.objects.create(name="Before")
        log.error("while the caller is in a transaction")
        Team.objects.create(name="After")  # PostgreSQL would refuse this after a bare failure

    assert set(Team.objects.values_list("name", flat=True)) >= {"Before", "After"}
    assert "vigil: error event not stored" in capsys.readouterr().err


@pytest.mark.django_db
def test_an_unreachable_database_falls_back_to_stderr_then_rests(capsys):
    attempts = []

    def unreachable(execute, sql, params, many, context):
        if "monitoring_errorevent" in sql:
            attempts.append(sql)
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(unreachable):
        log.error("first while the database is away")
        log.error("second while the database is away")

    err = capsys.readouterr().err
    assert "OperationalError: server closed the connection unexpectedly" in err
    assert "first while the database is away" in err
    assert "the database failed a moment ago" in err
    assert "second while the database is away" in err
    assert len(attempts) == 1


def test_a_command_goes_on_when_the_database_is_down():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="crm.settings_test",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed_port()}/vigil",
    )
    code = (
        "import logging; logging.getLogger('billing').error('refund %s failed', 7);"
        " print('went on'); raise RuntimeError('and then crashed')"
    )

    result = manage("shell", "-c", code, env=env)

    assert result.returncode == 1
    assert "went on" in result.stdout
    assert "vigil: error event not stored (OperationalError" in result.stderr
    assert "billing: refund 7 failed" in result.stderr
    assert "RuntimeError: and then crashed" in result.stderr  # the usual traceback still
    assert "RecursionError" not in result.stderr
    assert len(result.stderr) < 10_000


@pytest.mark.django_db
def test_a_record_logged_while_storing_goes_to_stderr_not_round_again(monkeypatch, capsys):
    def store_that_logs(occurrence):
        logging.getLogger("tests.monitoring.store").error("storing went wrong")
        raise RuntimeError("could not store")

    monkeypatch.setattr(capture, "store", store_that_logs)

    log.error("the original error")

    err = capsys.readouterr().err
    assert "logged while an error event was being stored" in err
    assert "storing went wrong" in err
    assert "(RuntimeError: could not store): tests.monitoring.billing: the original error" in err


@pytest.mark.django_db
def test_warnings_and_runservers_access_lines_are_not_stored():
    log.warning("a warning is not a bug")
    logging.getLogger("django.server").error('"GET /x HTTP/1.1" 500 145')

    assert not ErrorEvent.objects.exists()
