from django.core.management.base import BaseCommand
from django.utils import timezone

from crm.runner import catch_up


class Command(BaseCommand):
    help = "Run, once each, every job whose latest scheduled slot was missed (e.g. after downtime)."

    def handle(self, *args, **options):
        runs = catch_up(timezone.now())
        for run in runs:
            self.stdout.write(f"{run.job}: {run.status}, covered {run.missed_slots + 1} slot(s)")
        self.stdout.write(f"caught up {len(runs)} job(s)")
