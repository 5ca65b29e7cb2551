import random
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import module_has_submodule

from crm.demo import PASSWORD


@dataclass
class Demo:
    """What one app's demo seeding hands to the next (apps seed in INSTALLED_APPS order)."""

    now: datetime
    rng: random.Random
    accounts: list = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)


class Command(BaseCommand):
    help = "Load a realistic demo data set (idempotent) and print the demo logins."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even on a non-SQLite database (demo users have a known password).",
        )

    def handle(self, *args, force, **options):
        if connection.vendor != "sqlite" and not force:
            raise CommandError(
                "seed_demo creates users with a published password; on a shared database "
                "pass --force if you mean it."
            )
        demo = Demo(now=timezone.now(), rng=random.Random(2026))
        with transaction.atomic():
            for config in apps.get_app_configs():
                if module_has_submodule(config.module, "demo"):
                    import_module(f"{config.name}.demo").seed(demo)
        self.stdout.write(f"Demo logins (password: {PASSWORD}):")
        for username, who in demo.logins:
            self.stdout.write(f"  {username:<12} {who}")
