from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from crm.models import RPH, Account, Contact, Dispatch, Event, Opportunity, Task, Team, User
from finance.models import Invoice, Payment
from notifications.models import ReminderRule


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Team {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@vigil.example")
    password = factory.django.Password("pw-for-tests")
    role = User.Role.REP


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Account {n}")


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Contact {n}")
    email = factory.Sequence(lambda n: f"contact{n}@client.example")


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task

    title = factory.Sequence(lambda n: f"Task {n}")
    owner = factory.SubFactory(UserFactory)
    due_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))


class InvoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invoice

    account = factory.SubFactory(AccountFactory)
    number = factory.Sequence(lambda n: f"INV-{n:06d}")
    voucher_date = factory.LazyFunction(lambda: timezone.localdate())
    amount = Decimal("100.00")
    debt = Decimal("100.00")


class PaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payment

    invoice = factory.SubFactory(InvoiceFactory)
    paid_on = factory.LazyFunction(lambda: timezone.localdate())
    amount = Decimal("10.00")


class OpportunityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Opportunity

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Deal {n}")
    owner = factory.SubFactory(UserFactory)
    expected_close = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=30))


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    title = factory.Sequence(lambda n: f"Meeting {n}")
    owner = factory.SubFactory(UserFactory)
    start_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))
    end_at = factory.LazyAttribute(lambda e: e.start_at + timedelta(hours=1))


class DispatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dispatch

    title = factory.Sequence(lambda n: f"Inspection {n}")
    team = factory.SubFactory(TeamFactory, kind="visiting")
    owner = factory.SubFactory(UserFactory)
    scheduled_at = factory.LazyFunction(timezone.now)
    due_at = factory.LazyAttribute(lambda d: d.scheduled_at + timedelta(hours=4))


class ReminderRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReminderRule

    name = factory.Sequence(lambda n: f"Rule {n}")
    object_kind = "task"


class LeadFactory(factory.django.DjangoModelFactory):
    """An RPH lead, new, owned by a rep."""

    class Meta:
        model = RPH

    name = factory.Sequence(lambda n: f"Lead {n}")
    company = factory.Sequence(lambda n: f"Company {n}")
    email = factory.Sequence(lambda n: f"lead{n}@prospect.example")
    owner = factory.SubFactory(UserFactory)
    status = RPH.Status.NEW
    status_changed_at = factory.LazyFunction(timezone.now)
    last_activity_at = factory.LazyAttribute(lambda lead: lead.status_changed_at)
