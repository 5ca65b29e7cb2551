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
