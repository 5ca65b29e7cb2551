from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from crm.models import Account, Task, Team, User
from finance.models import Invoice


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
