from django.core.management.base import BaseCommand
from django.utils import timezone

from crm import ledger, registry, runner
from crm.management.commands.runjob import parse_as_of


class Command(BaseCommand):
    help = "List every job with its schedule, last run, next run and last status."

    def add_arguments(self, parser):
        parser.add_argument(
            "--as-of", help="The moment the list is for: next runs after it (default: now)."
        )

    def handle(self, *args, as_of=None, **options):
        now = parse_as_of(as_of) if as_of else timezone.now()
        jobs = registry.all_jobs()
        last_runs = ledger.last_runs(job.name for job in jobs)
        rows = [("JOB", "SCHEDULE", "LAST RUN", "STATUS", "NEXT RUN")]
        for job in jobs:
            expression, tz, enabled = runner.schedule_of(job.name)
            last = last_runs.get(job.name)
            next_run = ledger.next_run(expression, tz, enabled, now)
            rows.append(
                (
                    job.name,
                    f"{expression} {tz}" + ("" if enabled else " (disabled)"),
                    ledger.local(last.started_at if last else None),
                    ledger.status(job.name, last.status if last else None, now),
                    ledger.local(next_run) if next_run else "-",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write(
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            )
