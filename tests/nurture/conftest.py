from datetime import UTC, datetime

import factory
import pytest

from crm.models import RPH
from nurture.models import EmailTemplate, Sequence, Step
from tests.factories import UserFactory

# Sunday 1 March 2026, 10:00 UTC: the lead enters Nurture P2; the job runs daily at 08:00.
ENROLLED = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def run_at(day: int, month: int = 3, hour: int = 8) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


class EmailTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EmailTemplate

    name = factory.Sequence(lambda n: f"Template {n}")
    subject = "{{ first_name }}, a word about {{ company }}"
    body = "<p>Hello {{ first_name }},</p><p>{{ owner_name }} here, from Vigil.</p>"


class SequenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sequence

    name = factory.Sequence(lambda n: f"P2 sequence {n}")
    active = True
    final_wait_days = 14


class RPHFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RPH

    name = factory.Sequence(lambda n: f"Lena Lead{n}")
    company = "Acme Media"
    email = factory.Sequence(lambda n: f"lead{n}@prospect.example")
    owner = factory.SubFactory(
        UserFactory, username="olga_owner", first_name="Olga", last_name="Owner"
    )
    status = RPH.Status.NEW
    status_changed_at = ENROLLED


def make_sequence(waits=(0, 3, 4, 7), final_wait=14, **kwargs) -> Sequence:
    """A P2 sequence with one step per wait, each its own template."""
    sequence = SequenceFactory(final_wait_days=final_wait, **kwargs)
    for order, wait in enumerate(waits, start=1):
        template = EmailTemplateFactory(
            name=f"{sequence.name} step {order}", subject=f"Step {order}: {{{{ company }}}}"
        )
        Step.objects.create(sequence=sequence, order=order, template=template, wait_days=wait)
    return sequence


def enrol(**kwargs) -> RPH:
    """A lead entering Nurture P2 at ENROLLED (the trigger enrols it)."""
    return RPHFactory(status=RPH.Status.NURTURE_P2, status_changed_at=ENROLLED, **kwargs)


@pytest.fixture
def sequence(db):
    return make_sequence()


@pytest.fixture
def owner(db):
    return UserFactory(
        username="olga_owner", first_name="Olga", last_name="Owner", email="olga@vigil.example"
    )
