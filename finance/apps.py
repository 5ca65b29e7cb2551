from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.db.models.signals import post_migrate, pre_migrate

from finance.currencies import CURRENCIES


def check_company_currency(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A typo in VIGIL_CURRENCY stops start-up: every new invoice would carry it."""
    code = settings.VIGIL_CURRENCY
    if code in CURRENCIES:
        return []
    return [
        checks.Error(
            f"VIGIL_CURRENCY={code!r} is not an ISO 4217 currency code (such as EUR).",
            id="finance.E001",
        )
    ]


class FinanceConfig(AppConfig):
    name = "finance"

    def ready(self) -> None:
        checks.register(check_company_currency)
        from crm.triggers import around_migrate
        from finance import triggers

        before, after = around_migrate(
            "finance", "0005_invoice_team_and_aging", triggers.uninstall, triggers.reinstall
        )
        pre_migrate.connect(before, sender=self, weak=False)
        post_migrate.connect(after, sender=self, weak=False)
