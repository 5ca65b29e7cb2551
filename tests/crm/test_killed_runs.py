"""A scheduled run killed with -9 half-way does not keep its slot: the next catch-up (Beat's
periodic one, or a redelivered message) runs the slot again, and what the data ends up as is
what one clean run makes, with nothing twice."""

import re
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
import redis
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from crm import registry, runner, schedules, slots
from crm.models import JobRun
from finance.models import Invoice, PenaltyAccrual, PenaltyPolicy
from mailsync.models import OutboxMessage
from nurture.models import Enrollment, SentStep
from parc.models import ParcSettings, ParcVisit
from tests.factories import InvoiceFactory, UserFactory
from tests.nurture.conftest import make_sequence
from tests.parc.conftest import AgreementFactory
from tests.processes import celery_worker_with_beat, killed_once, shell, wait_until_free

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="a runner killed in another process: PostgreSQL"
)

# A real scheduled run in a child process, with small units of work so that it has several;
# it stops just before the job's PAUSE_AT-th commit (the work of the commits before it is in
# the database, the current unit's is not) and waits there to be killed.
KILLABLE_RUNNER = """
import sys
from datetime import datetime
from django.db import connection
from crm import registry, runner
import finance.jobs, nurture.sending, parc.visits

finance.jobs.RANGE = parc.visits.BATCH = nurture.sending.BATCH = 3
commits, commit, job_running, call_job = 0, connection.commit, False, registry.Job.__call__

def job_call(*args, **kwargs):
    global job_running
    job_running = True
    return call_job(*args, **kwargs)

def pausing_commit():
    global commits
    commits += job_running
    if commits == PAUSE_AT:
        print("paused before commit", commits, flush=True)
        sys.stdin.read()
    commit()

connection.commit = pausing_commit
registry.Job.__call__ = job_call
slot = datetime.fromisoformat(SLOT)
run = runner.run_job(NAME, slot, trigger="schedule", slot=slot)  # as run_scheduled does
print("finished", run, flush=True)
"""


def killed_mid_run(env, name, slot, pause_at):
    script = KILLABLE_RUNNER.replace("PAUSE_AT", str(pause_at))
    script = script.replace("NAME", repr(name)).replace("SLOT", repr(slot.isoformat()))
    killed_once(env, script, "paused before commit", timeout=90)
    wait_until_free(name)


def clean_run(name, as_of, snapshot):
    """What one clean run of the slot makes: the job run on the same data in a transaction
    that is rolled back."""
    with transaction.atomic():
        registry.get(name)(as_of, dry_run=True)
        made = snapshot()
        transaction.set_rollback(True)
    return made


RECORD_ID = re.compile(r"/\d+/")
UNSUBSCRIBE_TOKEN = re.compile(r"unsubscribe/[^/\s]+")  # signed with the second it was made

# The data of each job, and what its run makes (natural keys only: ids differ between runs).


def invoices(slot):
    PenaltyPolicy.objects.create(name="Default", annual_rate=Decimal("13.25"))
    for n in range(11):
        InvoiceFactory(
            voucher_date=timezone.localdate(slot) - timedelta(days=30 + n),
            amount=Decimal("1000.00") + n,
            debt=Decimal("1000.00") + n,
        )


def penalties():
    fields = [f.attname for f in PenaltyAccrual._meta.concrete_fields if f.attname != "id"]
    accruals = sorted(map(repr, PenaltyAccrual.objects.values_list(*fields)))
    invoice_fields = [f.attname for f in Invoice._meta.concrete_fields]
    return accruals, sorted(map(repr, Invoice.objects.values_list(*invoice_fields)))


def agreements(slot):
    ParcSettings.current()  # made once, before the run
    manager = UserFactory(username="maria_manager", role="manager", email="maria@vigil.example")
    monday = timezone.localdate(slot)
    for n in range(10):
        AgreementFactory(
            account__name=f"Client {n}",
            account__account_manager=manager,
            plan="FREQ=WEEKLY;BYDAY=TU",
            first_visit=monday + timedelta(days=1),
        )


def parc_made():
    visits = ParcVisit.objects.values_list(
        "agreement__account__name",
        "visit_date",
        "opportunity__name",
        "inspection__title",
        "follow_up__title",
        "dispatch__team__name",
    )
    return sorted(visits), _emails()


def leads(slot):
    from tests.nurture.conftest import RPHFactory

    make_sequence()
    owner = UserFactory(username="olga_owner", first_name="Olga", email="olga@vigil.example")
    for _ in range(10):
        RPHFactory(owner=owner, status="nurture_p2", status_changed_at=slot - timedelta(days=1))


def nurture_made():
    steps = SentStep.objects.values_list("enrollment__rph__email", "step__order", "skipped")
    enrollments = Enrollment.objects.values_list("rph__email", "status")
    return sorted(steps), sorted(enrollments), _emails()


def _emails():
    """Who was emailed what (record ids and unsubscribe tokens in links left out: they differ
    from run to run)."""
    emails = OutboxMessage.objects.values_list("to", "subject", "text_body")
    return sorted(((to, subject, _same_links(text)) for to, subject, text in emails), key=repr)


def _same_links(text):
    return UNSUBSCRIBE_TOKEN.sub("unsubscribe/#", RECORD_ID.sub("/#/", text))


JOBS = {
    # job: (its data, what it makes, the commit it is killed before)
    "finance_penalties": (invoices, penalties, 2),
    "parc_generate": (agreements, parc_made, 2),
    "nurture_send": (leads, nurture_made, 2),
}


def scheduled_slot_of(name):
    expression, tz, _ = runner.schedule_of(name)
    return slots.latest_slot(expression, tz, timezone.now())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", list(JOBS))
def test_a_scheduled_run_killed_half_way_is_finished_by_the_next_catch_up(name, subprocess_env):
    data, made, pause_at = JOBS[name]
    slot = scheduled_slot_of(name)
    data(slot)
    clean = clean_run(name, slot, made)
    assert all(clean), "the data gives the job work to do"

    killed_mid_run(subprocess_env, name, slot, pause_at)

    half = made()
    assert half != clean, "the run was killed before it finished"
    assert any(half), "the run was killed after it committed some of its work"
    assert name in runner.missed_jobs(timezone.now())

    run = runner.run_scheduled(name, timezone.now(), trigger=JobRun.Trigger.CATCHUP)

    assert run is not None and run.status == JobRun.Status.SUCCEEDED and run.slot == slot
    assert made() == clean
    ledger = JobRun.objects.filter(job=name).order_by("started_at")
    assert list(ledger.values_list("slot", "status")) == [
        (slot, JobRun.Status.ABANDONED),
        (slot, JobRun.Status.SUCCEEDED),
    ]
    assert name not in runner.missed_jobs(timezone.now())
    assert runner.run_scheduled(name, timezone.now(), trigger=JobRun.Trigger.CATCHUP) is None
    assert made() == clean


BLOCKING_RUNNER = """
import sys
from datetime import datetime
from crm import registry, runner

def blocker(as_of, *, dry_run=False):
    print("job is running", flush=True)
    sys.stdin.read()  # holds until killed
    return {}

registry.job("test_blocker", schedule="0 6 * * *")(blocker)
runner.run_scheduled("test_blocker", datetime.fromisoformat(NOW))
"""


def kill_a_blocker(env, now):
    killed_once(env, BLOCKING_RUNNER.replace("NOW", repr(now.isoformat())), "job is running")
    wait_until_free("test_blocker")


@pytest.mark.django_db(transaction=True)
def test_a_slot_killed_every_time_is_left_to_the_next_slot(make_job, subprocess_env, settings):
    settings.VIGIL_JOB_SLOT_ATTEMPTS = 2
    now = timezone.now()
    kill_a_blocker(subprocess_env, now)
    make_job("test_blocker", lambda as_of, dry_run=False: {})
    assert "test_blocker" in runner.missed_jobs(now + runner.CATCH_UP_GRACE)
    kill_a_blocker(subprocess_env, now)  # the retry is killed too

    assert "test_blocker" not in runner.missed_jobs(now + runner.CATCH_UP_GRACE)
    assert runner.run_scheduled("test_blocker", now) is None
    assert JobRun.objects.filter(job="test_blocker").count() == 2
    out = StringIO()
    call_command("jobs", stdout=out)
    assert "abandoned" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_run_that_is_running_now_is_not_run_again(make_job, subprocess_env):
    script = BLOCKING_RUNNER.replace("NOW", repr(timezone.now().isoformat()))
    child, output = shell(subprocess_env, script)
    try:
        output.wait_for("job is running", timeout=60)
        make_job("test_blocker", lambda as_of, dry_run=False: {})
        later = timezone.now() + runner.CATCH_UP_GRACE

        assert "test_blocker" not in runner.missed_jobs(later)
        assert runner.run_scheduled("test_blocker", later) is None
    finally:
        child.stdin.close()
        child.wait(30)
    [run] = JobRun.objects.filter(job="test_blocker")
    assert run.status == JobRun.Status.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_a_run_that_outlives_its_lock_and_its_replacement_stays_abandoned(make_job):
    """A run that lost its lock (its connection dropped) but still lives: a new runner marked
    it abandoned and ran its slot. When it ends, its row must not take the slot back."""
    slot = timezone.now().replace(second=0, microsecond=0)

    def taken_over_while_running(as_of, dry_run=False):
        JobRun.objects.filter(job="test_slow", status="running").update(status="abandoned")
        JobRun.objects.create(
            job="test_slow",
            trigger="schedule",
            slot=slot,
            as_of=slot,
            status="succeeded",
            started_at=timezone.now(),
            finished_at=timezone.now(),
        )
        return {"done": 1}

    make_job("test_slow", taken_over_while_running)

    run = runner.run_job("test_slow", slot, trigger="schedule", slot=slot)

    assert run.status == JobRun.Status.ABANDONED
    assert "Another run took the job over; this one then succeeded" in run.error
    ledger = JobRun.objects.filter(job="test_slow").order_by("pk")
    assert list(ledger.values_list("status", flat=True)) == ["abandoned", "succeeded"]


@pytest.mark.django_db(transaction=True)
def test_beat_finishes_a_killed_slot_without_a_restart(subprocess_env, tmp_path):
    """A real worker and Beat: a run of parc_generate killed in another process is run again
    by Beat's periodic catch-up (here every 2 s instead of 5 min), not by a restart."""
    slot = scheduled_slot_of("parc_generate")
    agreements(slot)
    clean = clean_run("parc_generate", slot, parc_made)
    every, _ = IntervalSchedule.objects.get_or_create(every=2, period="seconds")
    PeriodicTask.objects.filter(name=schedules.CATCH_UP).update(interval=every)
    parc_task = PeriodicTask.objects.filter(name="parc_generate")
    parc_task.update(enabled=False)  # Beat's start-up catch-up must not run it first
    env = {**subprocess_env, "CELERY_BROKER_URL": "redis://127.0.0.1:6379/13"}
    redis.Redis.from_url(env["CELERY_BROKER_URL"]).flushdb()

    with celery_worker_with_beat(env, tmp_path) as output:
        output.wait_for(r"Sending due task catch_up_missed_slots", timeout=60)
        killed_mid_run(subprocess_env, "parc_generate", slot, pause_at=2)
        assert parc_made() != clean
        parc_task.update(enabled=True)
        PeriodicTasks.update_changed()
        runs = JobRun.objects.filter(job="parc_generate", status="succeeded")
        while not runs.exists():
            output.wait_for(r"Task crm\.run_scheduled_job\[.*\] succeeded", timeout=60)

    ledger = JobRun.objects.filter(job="parc_generate").order_by("started_at")
    assert list(ledger.values_list("slot", "status", "trigger")) == [
        (slot, JobRun.Status.ABANDONED, JobRun.Trigger.SCHEDULE),
        (slot, JobRun.Status.SUCCEEDED, JobRun.Trigger.CATCHUP),
    ]
    assert parc_made() == clean


@pytest.mark.django_db
def test_the_catch_up_is_on_beats_schedule_every_five_minutes():
    task = PeriodicTask.objects.select_related("interval").get(name=schedules.CATCH_UP)
    assert task.task == "crm.catch_up" and task.enabled
    assert (task.interval.every, task.interval.period) == (5, "minutes")
