"""One lock per job: a second runner is refused at once and told who holds the job; a killed
holder frees it at once; a run that loses its lock stops writing."""

import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection, connections
from django.utils import timezone

from crm import locks, runner
from crm.models import JobLock, JobRun, Team
from tests.processes import shell, wait_until_free

BLOCKING_RUNNER = """
import sys
from django.utils import timezone
from crm import registry, runner

def blocker(as_of, *, dry_run=False):
    print("job is running", flush=True)
    sys.stdin.read()  # holds until killed
    return {}

registry.job("test_blocker", schedule="0 6 * * *")(blocker)
runner.run_job("test_blocker", timezone.now())
"""

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="advisory locks are PostgreSQL's"
)


def dead_pid():
    """The pid of a process of this host that has just ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def in_thread():
    """Run a callable in a thread with its own database connection; join it at the end."""
    threads = []

    def start(target):
        outcome = {}

        def body():
            try:
                outcome["value"] = target()
            except Exception as exc:  # noqa: BLE001 - the outcome is what the test checks
                outcome["value"] = exc
            finally:
                connections.close_all()

        thread = threading.Thread(target=body)
        thread.start()
        threads.append(thread)
        return thread, outcome

    yield start
    for thread in threads:
        thread.join(30)


@pytest.mark.django_db(transaction=True)
def test_a_second_runner_is_refused_at_once_with_who_holds_it_and_that_it_lives(
    make_job, in_thread
):
    inside, release = threading.Event(), threading.Event()

    def slow(as_of, *, dry_run=False):
        inside.set()
        assert release.wait(30)
        return {}

    make_job("test_held", slow)
    thread, outcome = in_thread(lambda: runner.run_job("test_held", timezone.now()))
    assert inside.wait(30)
    try:
        with pytest.raises(locks.JobLocked) as refused:
            runner.run_job("test_held", timezone.now())
    finally:
        release.set()
        thread.join(30)

    message = str(refused.value)
    assert message.startswith("job 'test_held' is already running (held by ")
    assert f":{os.getpid()}:" in message and "that process is alive" in message
    ending = "the lock ends with that process's database connection"
    assert (ending if connection.vendor == "postgresql" else "its lease expires at") in message
    assert outcome["value"].status == JobRun.Status.SUCCEEDED
    assert JobRun.objects.filter(job="test_held").count() == 1


@pytest.mark.django_db
def test_the_lock_is_released_when_the_run_ends(make_job):
    make_job("test_quick", lambda as_of, dry_run=False: {"ok": 1})

    runner.run_job("test_quick", timezone.now())

    assert JobLock.objects.get(job="test_quick").holder == ""
    assert not locks.is_held("test_quick", timezone.now())
    assert runner.run_job("test_quick", timezone.now()).status == "succeeded"


@pytest.fixture
def killed_holder(make_job, subprocess_env):
    """A runner in another process holding test_blocker, killed with SIGKILL mid-run."""
    holder, output = shell(subprocess_env, BLOCKING_RUNNER)
    try:
        output.wait_for("job is running", timeout=60)
        assert locks.is_held("test_blocker", timezone.now())
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert holder.returncode == -signal.SIGKILL
    make_job("test_blocker", lambda as_of, dry_run=False: {"recovered": 1})


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_killed_holder_frees_the_job_at_once(killed_holder):
    run = runner.run_job("test_blocker", timezone.now())  # no waiting for any lease

    assert run.status == JobRun.Status.SUCCEEDED and run.counts == {"recovered": 1}
    killed = JobRun.objects.exclude(pk=run.pk).get(job="test_blocker")
    assert killed.status == JobRun.Status.ABANDONED
    assert killed.error.startswith("Abandoned")


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_jobs_shows_a_killed_run_as_abandoned(killed_holder):
    wait_until_free("test_blocker")
    out = StringIO()

    call_command("jobs", stdout=out)

    assert not locks.is_held("test_blocker", timezone.now())
    assert "abandoned (its runner is gone)" in out.getvalue()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_run_that_loses_its_lock_stops_writing(make_job, in_thread, settings):
    settings.VIGIL_JOB_LEASE_SECONDS = 10  # the lock is checked every 3.3 s
    writing, stop_writing = threading.Event(), threading.Event()

    def writer(as_of, *, dry_run=False):
        for n in range(400):  # 40 s at most
            Team.objects.create(name=f"written {n}")
            writing.set()
            if stop_writing.wait(0.1):
                break
        return {"written": n + 1}

    make_job("test_writer", writer)
    thread, outcome = in_thread(lambda: runner.run_job("test_writer", timezone.now()))
    assert writing.wait(30)
    with connection.cursor() as cursor:  # what a dropped connection or a DBA would do
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
            " AND classid = %s::oid AND objsubid = 2 AND database ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())",
            [locks.ADVISORY_NAMESPACE],
        )
        assert cursor.rowcount == 1
    thread.join(20)
    stop_writing.set()
    written = Team.objects.count()

    run = outcome["value"]
    assert run.status == JobRun.Status.FAILED
    assert run.error.startswith("Stopped: the run lost its lock (its lock connection broke")
    assert "LockLost" in run.error
    assert 0 < written < 400
    assert Team.objects.count() == written  # nothing more after it stopped


@pytest.mark.django_db
def test_on_the_lease_a_dead_holder_on_this_host_is_replaced_at_once():
    host = locks.holder_name().split(":")[0]
    dead = f"{host}:{dead_pid()}:cafe"
    live_elsewhere = "other-host:1:beef"
    assert locks.LeaseLock("test_lease", dead).acquire()  # then its process ended

    assert locks.LeaseLock("test_lease", f"{host}:{os.getpid()}:new").acquire()

    JobLock.objects.filter(job="test_lease").update(holder=live_elsewhere)
    assert not locks.LeaseLock("test_lease", f"{host}:{os.getpid()}:late").acquire()
    lock = JobLock.objects.get(job="test_lease")
    assert "on another host" in locks.describe(lock)
    assert "its lease expires at" in locks.describe(lock)
    with time_machine.travel(lock.expires_at + timedelta(seconds=1), tick=False):
        assert locks.LeaseLock("test_lease", f"{host}:{os.getpid()}:later").acquire()


def test_a_refusal_says_whether_the_holder_still_runs():
    host = locks.holder_name().split(":")[0]
    dead = JobLock(job="x", holder=f"{host}:{dead_pid()}:cafe", acquired_at=timezone.now())
    alive = JobLock(job="x", holder=f"{host}:{os.getpid()}:cafe", acquired_at=timezone.now())

    assert "that process is no longer running" in str(locks.JobLocked("x", dead))
    assert "that process is alive" in str(locks.JobLocked("x", alive))
