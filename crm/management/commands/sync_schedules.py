from django.core.management.base import BaseCommand

from crm.schedules import sync_schedules


class Command(BaseCommand):
    help = "Write missing job schedules into Beat's tables; administrators' edits are kept."

    def handle(self, *args, **options):
        counts = sync_schedules()
        self.stdout.write(f"schedules: {counts['created']} created, {counts['repointed']} repaired")
