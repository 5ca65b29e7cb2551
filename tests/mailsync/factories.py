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


def imap_mailbox(owner, server, user, **fields):
    """A connected password mailbox on the test Dovecot for `user` (tests.imapserver)."""
    from mailsync import crypto
    from mailsync.models import Mailbox

    defaults = dict(
        owner=owner,
        provider=Mailbox.Provider.IMAP,
        auth=Mailbox.Auth.PASSWORD,
        address=user.address,
        username=user.address,
        imap_host=server.host,
        imap_port=server.port,
        imap_security=Mailbox.Security.NONE,
        secret=crypto.encrypt(user.password),
        status=Mailbox.Status.ACTIVE,
        next_sync_at=timezone.now(),
        created_at=timezone.now(),
    )
    return Mailbox.objects.create(**{**defaults, **fields})
