"""One lease per job: a second runner is refused at once; a killed holder's lease runs out."""

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from crm import locks, runner
from crm.models import JobLock, JobRun
from tests.processes import ROOT, Output

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


@pytest.mark.django_db
def test_a_second_runner_is_refused_at_once_with_who_holds_it():
    assert locks.acquire("outbox_send", "host-a:1:abc")

    with pytest.raises(locks.JobLocked, match=r"'outbox_send' is already running \(held by host-a"):
        runner.run_job("outbox_send", timezone.now())
    assert not JobRun.objects.exists()


@pytest.mark.django_db
def test_the_lease_is_released_when_the_run_ends(make_job):
    make_job("test_quick", lambda as_of, dry_run=False: {"ok": 1})

    runner.run_job("test_quick", timezone.now())

    lock = JobLock.objects.get(job="test_quick")
    assert lock.holder == "" and lock.expires_at is None
    assert runner.run_job("test_quick", timezone.now()).status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_the_lock_frees_itself_after_its_holder_is_killed(make_job, subprocess_env, settings):
    holder = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", BLOCKING_RUNNER],
        cwd=ROOT,
        env=subprocess_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        Output(holder).wait_for("job is running", timeout=60)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert holder.returncode == -signal.SIGKILL
    make_job("test_blocker", lambda as_of, dry_run=False: {"recovered": 1})

    with pytest.raises(locks.JobLocked):
        runner.run_job("test_blocker", timezone.now())  # the lease has not run out yet

    later = timezone.now() + timedelta(seconds=settings.VIGIL_JOB_LEASE_SECONDS + 1)
    with time_machine.travel(later, tick=False):
        run = runner.run_job("test_blocker", timezone.now())

    assert run.status == JobRun.Status.SUCCEEDED and run.counts == {"recovered": 1}
    killed = JobRun.objects.exclude(pk=run.pk).get(job="test_blocker")
    assert killed.status == JobRun.Status.FAILED
    assert killed.error.startswith("Abandoned")
