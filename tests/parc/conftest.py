from datetime import date
from decimal import Decimal

import factory
import pytest

from parc.models import Agreement
from tests.factories import AccountFactory, TeamFactory, UserFactory


class AgreementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agreement

    account = factory.SubFactory(
        AccountFactory,
        account_manager=factory.SubFactory(
            UserFactory, username="maria_manager", role="manager", email="maria@vigil.example"
        ),
    )
    visiting_team = factory.SubFactory(TeamFactory, name="Inspectors North", kind="visiting")
    plan = "FREQ=WEEKLY;BYDAY=TU"
    first_visit = date(2027, 1, 5)  # a Tuesday
    opportunity_amount = Decimal("450.00")


@pytest.fixture
def agreement(db):
    return AgreementFactory()


def agreement_form(account, **changes) -> dict:
    """The admin's add form for an agreement of `account`, as a browser posts it."""
    team = TeamFactory(name="Inspectors North", kind="visiting")
    return {
        "account": account.pk,
        "account_manager": "",
        "visiting_team": team.pk,
        "active": "on",
        "plan": "FREQ=WEEKLY;BYDAY=TU",
        "first_visit": "2027-01-05",
        "end_date": "",
        "visit_time": "09:00",
        "visit_duration": "02:00:00",
        "inspection_offset_days": "0",
        "follow_up_working_days": "5",
        "opportunity_name": "PARC visit {account} {date}",
        "opportunity_amount": "450.00",
        "notes": "",
        "visits-TOTAL_FORMS": "0",
        "visits-INITIAL_FORMS": "0",
        **changes,
    }
