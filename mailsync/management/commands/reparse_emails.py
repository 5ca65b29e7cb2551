from django.core.management.base import BaseCommand, CommandError

from mailsync import backlog


class Command(BaseCommand):
    help = (
        "Read every raw message the backlog kept (emails whose parse noted a problem, and those "
        "that could not be parsed) again with the current parser, and store what it reads now. "
        "Run it after upgrading Vigil; running it twice is harmless."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch", type=int, default=200, help="Emails per transaction (default 200)."
        )

    def handle(self, *args, batch: int, **options):
        if batch < 1:
            raise CommandError(f"--batch must be at least 1, not {batch}.")
        done = backlog.reparse(batch)
        self.stdout.write(
            f"re-parsed {done.read} kept messages: {done.changed} changed, "
            f"{done.kept_key} kept their old key (another email says the same), "
            f"{done.unreadable} unreadable"
        )
