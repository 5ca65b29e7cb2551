import json
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from crm import registry, runner
from crm.locks import JobLocked
from crm.models import JobRun


def parse_as_of(value: str) -> datetime:
    """ISO-8601 date or datetime; without an offset it is read in the company time zone."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"--as-of {value!r} is not an ISO-8601 date or datetime (e.g. 2026-11-28T06:00)"
        ) from None
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = "Run one job now, through the same engine Beat uses."

    def add_arguments(self, parser):
        parser.add_argument("job", help="Job name, as listed by `manage.py jobs`.")
        parser.add_argument("--as-of", help="The time the job works for (default: now).")
        parser.add_argument("--dry-run", action="store_true", help="Do the work, write nothing.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run a job that charges money or sends email for an --as-of in the future.",
        )

    def handle(self, *args, job, as_of, dry_run, json: bool, force: bool, **options):
        moment = parse_as_of(as_of) if as_of else timezone.now()
        try:
            run = runner.run_job(
                job, moment, dry_run=dry_run, trigger=JobRun.Trigger.MANUAL, force=force
            )
        except (registry.UnknownJob, JobLocked, runner.FutureAsOf) as exc:
            raise CommandError(str(exc)) from None
        if json:
            self.stdout.write(_as_json(run))
        else:
            counts = ", ".join(f"{k}={v}" for k, v in run.counts.items()) or "nothing to do"
            self.stdout.write(
                f"{run.job} {run.status} in {run.duration_s}s (as of {run.as_of.isoformat()}"
                f"{', dry run' if run.dry_run else ''}): {counts}"
            )
        if run.status == JobRun.Status.FAILED:
            last_line = run.error.strip().splitlines()[-1] if run.error else "unknown error"
            raise CommandError(f"{run.job} failed: {last_line} (traceback in JobRun #{run.pk})")


def _as_json(run: JobRun) -> str:
    return json.dumps(
        {
            "job": run.job,
            "as_of": run.as_of.isoformat(),
            "dry_run": run.dry_run,
            "status": run.status,
            "counts": run.counts,
            "duration_s": run.duration_s,
        }
    )
