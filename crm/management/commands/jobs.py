from django.core.management.base import BaseCommand
from django.db.models import Max
from django.utils import timezone

from crm import locks, registry, runner, slots
from crm.models import JobRun


class Command(BaseCommand):
    help = "List every job with its schedule, last run, next run and last status."

    def handle(self, *args, **options):
        now = timezone.now()
        last_ids = JobRun.objects.values("job").annotate(last=Max("pk")).values_list("last")
        last_runs = {run.job: run for run in JobRun.objects.filter(pk__in=last_ids)}
        rows = [("JOB", "SCHEDULE", "LAST RUN", "STATUS", "NEXT RUN")]
        for job in registry.all_jobs():
            expression, tz, enabled = runner.schedule_of(job.name)
            last = last_runs.get(job.name)
            next_run = slots.next_slot(expression, tz, now) if enabled else None
            rows.append(
                (
                    job.name,
                    f"{expression} {tz}" + ("" if enabled else " (disabled)"),
                    _local(last.started_at) if last else "never",
                    _status(last, now),
                    _local(next_run) if next_run else "-",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write(
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            )


def _status(run: JobRun | None, now) -> str:
    if run is None:
        return "-"
    if run.status == JobRun.Status.RUNNING and not locks.is_held(run.job, now):
        return "abandoned (its runner is gone)"
    return run.status


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")
