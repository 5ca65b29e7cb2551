"""The people of the invoice pages, and invoices due on a given day."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import F

from finance.models import Invoice, Payment, PenaltyPolicy
from tests.factories import AccountFactory, InvoiceFactory, TeamFactory, UserFactory

# Time on the invoice pages is frozen here: 10:00 on 15 March 2026, company time (UTC).
NOW = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)
TODAY = NOW.date()


@pytest.fixture
def now(time_machine):
    time_machine.move_to(NOW, tick=False)
    return NOW


@pytest.fixture
def north(db):
    return TeamFactory(name="North")


@pytest.fixture
def fiona(db):
    """Finance: in no sales team, sees every invoice and records payments."""
    return UserFactory(username="fiona", first_name="Fiona", role="finance")


@pytest.fixture
def rita(north):
    """A rep of North."""
    return UserFactory(username="rita", first_name="Rita", role="rep", team=north)


@pytest.fixture
def manny(north):
    """North's manager, the account manager of North's accounts."""
    return UserFactory(username="manny", first_name="Manny", role="manager", team=north)


@pytest.fixture
def sam(db):
    """A rep of South."""
    return UserFactory(username="sam", role="rep", team=TeamFactory(name="South"))


@pytest.fixture
def sue(db):
    """South's manager."""
    return UserFactory(username="sue", role="manager", team=TeamFactory(name="South"))


@pytest.fixture
def acme(north, manny):
    return AccountFactory(name="Acme", team=north, account_manager=manny)


def due(account, days_past_due: int, *, number: str = "", debt="1000.00", **fields) -> Invoice:
    """An invoice of `account` that is `days_past_due` days past due on TODAY (negative: due
    in that many days), with its due date 30 days after its voucher date."""
    due_date = TODAY - timedelta(days=days_past_due)
    values = {
        "account": account,
        "voucher_date": due_date - timedelta(days=30),
        "payment_terms_days": 30,
        "amount": Decimal("1000.00"),
        "debt": Decimal(debt),
        **fields,
    }
    if number:
        values["number"] = number
    invoice = InvoiceFactory(**values)
    invoice.refresh_from_db()  # its generated due date
    return invoice


def on(day: date, hour: int = 2, minute: int = 30) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@pytest.fixture
def policy(db):
    """The default penalty policy: 10 % a year, no grace, fee or cap."""
    return PenaltyPolicy.objects.create(name="Default", annual_rate=Decimal("10"))


def invoice(**fields) -> Invoice:
    """An invoice of 1,000 owed in full, due on 31 January 2026."""
    defaults = {
        "voucher_date": date(2026, 1, 1),
        "payment_terms_days": 30,
        "amount": Decimal("1000.00"),
        "debt": Decimal("1000.00"),
    }
    return InvoiceFactory(**{**defaults, **fields})


def pay(inv: Invoice, on: date, amount: str, recorded: date | None = None) -> None:
    """A payment of `amount` made on `on`, recorded at noon that day (or on `recorded`), and
    the invoice's debt lowered by it as recording a payment does."""
    Payment.objects.create(
        invoice=inv,
        paid_on=on,
        amount=Decimal(amount),
        recorded_at=datetime.combine(recorded or on, datetime.min.time(), tzinfo=UTC)
        + timedelta(hours=12),
    )
    Invoice.objects.filter(pk=inv.pk).update(debt=F("debt") - Decimal(amount))
    inv.refresh_from_db()
