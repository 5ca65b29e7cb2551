"""The one job engine. Every entry point (Celery task, `manage.py runjob`, admin "Run now",
catch-up) ends in `run_job`, which takes the job's lease, writes the JobRun ledger row, calls
the job's plain function and records what it returned or how it failed."""

import logging
import traceback
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from crm import ledger, locks, registry, signals, slots
from crm.models import JobRun

log = logging.getLogger(__name__)


# Clocks of the hosts that start runs may differ a little; an as_of closer than this is "now".
CLOCK_SKEW = timedelta(minutes=5)
ABANDONED = "Abandoned: its runner stopped without finishing (killed or crashed)."
# A slot younger than this is Beat's own to run: the periodic catch-up leaves it alone.
CATCH_UP_GRACE = timedelta(minutes=2)


class SlotTaken(Exception):
    """Another runner already ran this scheduled slot."""


class FutureAsOf(ValueError):
    """A job that charges money or sends email was asked to work for a time still to come."""


def run_job(
    name: str,
    as_of: datetime,
    *,
    dry_run: bool = False,
    trigger: str = JobRun.Trigger.MANUAL,
    slot: datetime | None = None,
    missed_slots: int = 0,
    force: bool = False,
) -> JobRun:
    """Run one job now for `as_of`. Raises UnknownJob, JobLocked, SlotTaken or FutureAsOf; a
    failure of the job itself is recorded on the returned JobRun, never raised."""
    job = registry.get(name)
    if timezone.is_naive(as_of):
        raise ValueError("as_of must be an aware datetime")
    if job.final_effects and not (dry_run or force) and as_of > timezone.now() + CLOCK_SKEW:
        raise FutureAsOf(
            f"as_of {as_of.isoformat()} is in the future, and {name} {job.final_effects}, "
            "which cannot be undone; use --dry-run to preview it or --force to run it anyway"
        )
    holder = locks.holder_name()
    with locks.held(name, holder) as lock:
        started = timezone.now()
        # We hold the lock, so any run still marked running lost its runner (killed). Its
        # slot is free again: this run, or the next catch-up, runs it whole.
        JobRun.objects.filter(job=name, status=JobRun.Status.RUNNING).update(
            status=JobRun.Status.ABANDONED,
            finished_at=started,
            error=ABANDONED,
        )
        try:
            run = JobRun.objects.create(
                job=name,
                trigger=trigger,
                slot=slot,
                as_of=as_of,
                dry_run=dry_run,
                missed_slots=missed_slots,
                started_at=started,
                host=holder,
            )
        except IntegrityError:
            raise SlotTaken(f"{name} already ran for {slot}") from None
        _execute(job, run, lock)
    if run.status == JobRun.Status.FAILED and not dry_run:
        disable_after_repeated_failures(name)
    return run


def _execute(job: registry.Job, run: JobRun, lock: locks.Held) -> None:
    try:
        # Once the lock is lost, the job's next query raises LockLost and its open
        # transaction rolls back: a run that may no longer be alone writes nothing more.
        with connection.execute_wrapper(lock.guard):
            if run.dry_run:
                # A dry run does all its work, then rolls every write back.
                with transaction.atomic():
                    counts = job(run.as_of, dry_run=True)
                    transaction.set_rollback(True)
            else:
                counts = job(run.as_of, dry_run=False)
    except Exception:
        log.exception("job %s failed (run %s)", job.name, run.pk)
        run.status = JobRun.Status.FAILED
        run.error = traceback.format_exc()
        if lock.lost.is_set():
            run.error = f"Stopped: the run lost its lock ({lock.reason}).\n\n{run.error}"
    else:
        run.status = JobRun.Status.SUCCEEDED
        run.counts = {key: int(value) for key, value in (counts or {}).items()}
    run.finished_at = timezone.now()
    outcome = {f: getattr(run, f) for f in ("status", "error", "counts", "finished_at")}
    if not JobRun.objects.filter(pk=run.pk, status=JobRun.Status.RUNNING).update(**outcome):
        _taken_over(run)


def _taken_over(run: JobRun) -> None:
    """This run lost its lock while it lived, and a new runner took the job over, marked this
    run abandoned and ran its slot: the slot is that run's. This one stays abandoned (back in
    the one-run-per-slot index it would clash with the new run), saying how it ended."""
    log.warning("job %s: run %s ended after another run took the job over", run.job, run.pk)
    ended = "succeeded" if run.status == JobRun.Status.SUCCEEDED else "failed"
    run.error = f"{ABANDONED} Another run took the job over; this one then {ended}.\n\n{run.error}"
    run.status = JobRun.Status.ABANDONED
    JobRun.objects.filter(pk=run.pk).update(error=run.error, finished_at=run.finished_at)


def schedule_of(name: str) -> tuple[str, str, bool]:
    """(crontab expression, time zone, enabled) as the administrator has it in Beat's tables,
    or the job's default when it was never synced."""
    task = PeriodicTask.objects.select_related("crontab").filter(name=name).first()
    if task is None or task.crontab is None:
        return registry.get(name).schedule, settings.TIME_ZONE, task is None or task.enabled
    return ledger.crontab_expression(task.crontab), str(task.crontab.timezone), task.enabled


def run_scheduled(
    name: str, now: datetime, *, trigger: str = JobRun.Trigger.SCHEDULE
) -> JobRun | None:
    """Run the latest slot due at `now` unless it already ran. Slots missed since the last
    scheduled run are not run one by one: this run covers them (jobs catch up by as_of) and
    records how many it stands for. Returns None when there was nothing to do."""
    due = due_slot(name, now)
    if due is None:
        return None
    slot, missed = due
    try:
        return run_job(name, slot, trigger=trigger, slot=slot, missed_slots=missed)
    except SlotTaken:
        return None


def due_slot(name: str, now: datetime) -> tuple[datetime, int] | None:
    """The job's latest slot at `now` and how many earlier slots it stands for, when that slot
    still has to run: no run holds it, or only runs whose runner is gone (killed mid-run: a
    slot is not done until a run of it finishes). None when the job is disabled, the slot is
    done or running, or it was abandoned VIGIL_JOB_SLOT_ATTEMPTS times (it then waits for
    the next slot, which covers it: a run the machine kills every time must not loop)."""
    registry.get(name)
    expression, tz, enabled = schedule_of(name)
    if not enabled:
        return None
    slot = slots.latest_slot(expression, tz, now)
    scheduled = JobRun.objects.filter(job=name, trigger__in=JobRun.SCHEDULED_TRIGGERS)
    runs = list(scheduled.filter(slot__gte=slot).values_list("status", flat=True))
    live = [status for status in runs if status != JobRun.Status.ABANDONED]
    if live and (live != [JobRun.Status.RUNNING] or locks.is_held(name, now)):
        return None  # done, or running now
    if len(runs) >= settings.VIGIL_JOB_SLOT_ATTEMPTS:
        log.warning("%s: slot %s abandoned %s times; left to the next slot", name, slot, len(runs))
        return None
    last = (
        scheduled.filter(slot__lt=slot)
        .exclude(status=JobRun.Status.ABANDONED)
        .aggregate(last=Max("slot"))["last"]
    )
    missed = slots.slots_between(expression, tz, last, slot) if last else 0
    return slot, missed


def catch_up(now: datetime) -> list[JobRun]:
    """Run, once each, every enabled job whose latest slot has not run yet."""
    runs = []
    for job in registry.all_jobs():
        try:
            run = run_scheduled(job.name, now, trigger=JobRun.Trigger.CATCHUP)
        except locks.JobLocked as exc:
            log.info("catch-up skipped: %s", exc)
            continue
        if run is not None:
            runs.append(run)
    return runs


def missed_jobs(now: datetime) -> list[str]:
    """The jobs whose latest slot, due for longer than Beat needs to send it, has not run or
    lost its runner: what the periodic catch-up queues."""
    return [job.name for job in registry.all_jobs() if due_slot(job.name, now - CATCH_UP_GRACE)]


def disable_after_repeated_failures(name: str) -> bool:
    """After VIGIL_JOB_MAX_FAILURES failed runs in a row, stop scheduling the job and tell
    the administrators (once: only the run that flips `enabled` sends the signal)."""
    limit = settings.VIGIL_JOB_MAX_FAILURES
    recent = list(
        JobRun.objects.filter(job=name, dry_run=False)
        .exclude(status=JobRun.Status.RUNNING)
        .order_by("-started_at", "-pk")
        .values_list("status", flat=True)[:limit]
    )
    if len(recent) < limit or any(s != JobRun.Status.FAILED for s in recent):
        return False
    with transaction.atomic():  # disabled and announced together, or neither
        if PeriodicTask.objects.filter(name=name, enabled=True).update(enabled=False) != 1:
            return False
        PeriodicTasks.update_changed()
        last = JobRun.objects.filter(job=name).order_by("-started_at", "-pk").first()
        signals.job_disabled.send(sender=JobRun, job=name, failures=limit, last_run=last)
    return True
