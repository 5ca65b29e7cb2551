import factory
from django.utils import timezone

from crm.models import RPH, Contact
from mailsync.models import Suppression
from tests.factories import AccountFactory


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Contact {n}")
    email = factory.Sequence(lambda n: f"contact{n}@client.example")


class RPHFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RPH

    name = factory.Sequence(lambda n: f"Lead {n}")
    company = "Acme"
    email = factory.Sequence(lambda n: f"lead{n}@client.example")
    status_changed_at = factory.LazyFunction(timezone.now)


class SuppressionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Suppression
        django_get_or_create = ("address",)

    address = factory.Sequence(lambda n: f"gone{n}@client.example")
    source = Suppression.Source.BOUNCE
    reason = "Postmark reported bounced: mailbox does not exist"
    created_at = factory.LazyFunction(timezone.now)
