"""`manage.py runjob` and `manage.py jobs`: the operator's entry points to the engine."""

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from crm.models import JobRun, Team
from tests.processes import manage


def run_command(*args):
    out = StringIO()
    call_command("runjob", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def team_maker(make_job):
    def make_team(as_of, *, dry_run=False):
        Team.objects.get_or_create(name=f"Team of {as_of:%Y-%m-%d}")
        return {"teams": Team.objects.count()}

    make_job("test_team_maker", make_team)


@pytest.mark.django_db
def test_json_prints_exactly_one_object(team_maker):
    out = run_command("test_team_maker", "--as-of", "2026-11-28T06:00:00+00:00", "--json")

    assert json.loads(out) == {
        "job": "test_team_maker",
        "as_of": "2026-11-28T06:00:00+00:00",
        "dry_run": False,
        "status": "succeeded",
        "counts": {"teams": 1},
        "duration_s": json.loads(out)["duration_s"],
    }
    assert isinstance(json.loads(out)["duration_s"], float)
    assert out.count("\n") == 1


@pytest.mark.django_db
def test_a_naive_as_of_is_read_in_the_company_time_zone(team_maker, settings):
    settings.TIME_ZONE = "Europe/Madrid"

    out = run_command("test_team_maker", "--as-of", "2026-11-28T06:00", "--json")

    assert json.loads(out)["as_of"] == "2026-11-28T06:00:00+01:00"
    assert JobRun.objects.get().as_of == datetime(2026, 11, 28, 5, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_a_dry_run_does_the_work_and_writes_nothing(team_maker):
    out = run_command("test_team_maker", "--as-of", "2026-11-28", "--dry-run", "--json")

    assert json.loads(out)["counts"] == {"teams": 1} and json.loads(out)["dry_run"] is True
    assert not Team.objects.exists()
    assert JobRun.objects.get().dry_run is True


@pytest.mark.django_db
def test_a_failing_job_exits_non_zero_naming_the_error_and_the_ledger_row(make_job):
    def broken(as_of, *, dry_run=False):
        raise ValueError("payment terms missing")

    make_job("test_broken", broken)

    with pytest.raises(CommandError, match=r"test_broken failed: ValueError: payment terms"):
        run_command("test_broken")
    assert "ValueError: payment terms missing" in JobRun.objects.get(job="test_broken").error


@pytest.mark.django_db
def test_unknown_job_and_bad_as_of_are_refused_in_one_line():
    with pytest.raises(CommandError, match=r"unknown job 'nope' \(known jobs: .*outbox_send"):
        run_command("nope")
    with pytest.raises(CommandError, match=r"--as-of 'yesterday' is not an ISO-8601"):
        run_command("outbox_send", "--as-of", "yesterday")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["runjob", "nope"], "unknown job 'nope'"),
        (["runjob", "outbox_send", "--as-of", "28/11/2026"], "is not an ISO-8601"),
    ],
)
def test_bad_input_from_a_shell_gives_one_line_and_a_non_zero_exit(args, message, subprocess_env):
    result = manage(*args, env=subprocess_env)

    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.django_db(transaction=True)
def test_a_locked_job_from_a_shell_says_so_and_exits_non_zero(subprocess_env):
    from crm import locks

    with locks.held("outbox_send", "other-host:42:abcd"):
        result = manage("runjob", "outbox_send", env=subprocess_env)

    assert result.returncode == 1
    assert "'outbox_send' is already running (held by other-host:42:abcd" in result.stderr
    assert "on another host" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize(
    "job", ["finance_penalties", "outbox_send", "expired_jobs_alert", "bug_report"]
)
def test_jobs_that_charge_or_email_refuse_an_as_of_in_the_future(job):
    tomorrow = (timezone.now() + timedelta(days=3)).isoformat()

    with pytest.raises(CommandError, match="is in the future.*--force to run it anyway"):
        run_command(job, "--as-of", tomorrow)

    assert not JobRun.objects.exists()
    assert json.loads(run_command(job, "--as-of", tomorrow, "--dry-run", "--json"))["dry_run"]
    assert json.loads(run_command(job, "--as-of", tomorrow, "--force", "--json"))["status"] == (
        "succeeded"
    )


@pytest.mark.django_db
def test_other_jobs_may_look_ahead(team_maker):
    tomorrow = (timezone.now() + timedelta(days=1)).isoformat()

    assert json.loads(run_command("test_team_maker", "--as-of", tomorrow, "--json"))["counts"]


@pytest.mark.django_db
def test_jobs_lists_schedule_last_run_status_and_next_run(team_maker):
    run_command("test_team_maker", "--as-of", "2026-11-28T06:00:00+00:00")
    out = StringIO()

    call_command("jobs", stdout=out)

    lines = {line.split()[0]: line for line in out.getvalue().splitlines()[1:]}
    assert "outbox_send" in lines and "never" in lines["outbox_send"]
    assert "0 6 * * * UTC" in lines["test_team_maker"]
    assert "succeeded" in lines["test_team_maker"]


@pytest.mark.django_db
def test_jobs_lists_the_next_runs_after_a_given_moment(team_maker):
    out = StringIO()

    call_command("jobs", "--as-of", "2030-01-07T04:00", stdout=out)

    lines = {line.split()[0]: line for line in out.getvalue().splitlines()[1:]}
    assert lines["test_team_maker"].rstrip().endswith("2030-01-07 06:00 UTC")
