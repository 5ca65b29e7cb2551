from django.apps import AppConfig
from django.conf import settings
from django.core import checks

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
        from django.db.models.signals import post_delete, post_save

        from crm.models import Account, Team
        from finance.models import Invoice, Payment

        checks.register(check_company_currency)
        # The admin's and the payment service's writes; an account's (its team decides who
        # sees its invoices) and a team's.
        for model in (Invoice, Payment, Account, Team):
            for signal in (post_save, post_delete):
                signal.connect(_changed, sender=model, dispatch_uid=f"aging-{model.__name__}")


def _changed(sender, **kwargs) -> None:
    from finance.invoice_list import forget_aging

    forget_aging()
