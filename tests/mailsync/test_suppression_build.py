"""suppression_build: every rejected contact's address goes on the list, normalised, once;
leaving "rejected" does not take it off."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from crm import runner
from crm.models import Contact
from mailsync import suppression
from mailsync.models import Suppression
from tests.mailsync.factories import ContactFactory

NIGHT = datetime(2026, 11, 3, 0, 15, tzinfo=UTC)  # 01:15 in Madrid
REJECTED = Contact.Status.REJECTED


def listed():
    return dict(Suppression.objects.values_list("address", "source"))


@time_machine.travel(NIGHT, tick=False)
@pytest.mark.django_db
def test_rejected_contacts_are_listed_once_and_a_re_run_adds_nothing():
    ContactFactory(name="Rosa", email="rosa@client.example", status=REJECTED)
    ContactFactory(name="Rosa again", email="ROSA@client.example", status=REJECTED)
    ContactFactory(email="active@client.example")
    ContactFactory(email="", status=REJECTED)

    first = runner.run_job("suppression_build", NIGHT)
    again = runner.run_job("suppression_build", NIGHT + timedelta(days=1))

    assert first.counts == {"listed": 1, "non_ascii": 0}
    assert again.counts == {"listed": 0, "non_ascii": 0}
    assert listed() == {"rosa@client.example": "rejected"}
    row = Suppression.objects.get()
    assert row.reason.startswith("Contact “Rosa") and row.created_at == NIGHT


@pytest.mark.django_db
def test_addresses_are_trimmed_lower_cased_and_idn_domains_in_ascii():
    ContactFactory(email="  Bob.Smith@Client.EXAMPLE ", status=REJECTED)
    ContactFactory(email="Ana@Bücher.Example", status=REJECTED)
    ContactFactory(email="ana@xn--bcher-kva.example", status=REJECTED)  # the same address

    counts = suppression.add_rejected_contacts(NIGHT)

    assert counts == {"listed": 2, "non_ascii": 1}
    assert listed() == {
        "bob.smith@client.example": "rejected",
        "ana@xn--bcher-kva.example": "rejected",
    }
    assert list(suppression.suppressed(["ANA@bücher.example "])) == ["ana@xn--bcher-kva.example"]


@pytest.mark.django_db
def test_a_contact_leaving_rejected_stays_on_the_list():
    rosa = ContactFactory(email="rosa@client.example", status=REJECTED)
    suppression.add_rejected_contacts(NIGHT)

    Contact.objects.filter(pk=rosa.pk).update(status=Contact.Status.ACTIVE)
    suppression.add_rejected_contacts(NIGHT + timedelta(days=1))

    assert "rosa@client.example" in suppression.suppressed(["rosa@client.example"])


@pytest.mark.django_db
def test_a_lifted_address_is_not_brought_back_by_the_next_build(administrator):
    ContactFactory(email="rosa@client.example", status=REJECTED)
    suppression.add_rejected_contacts(NIGHT)
    suppression.lift(Suppression.objects.all(), administrator, "she asked us to write", NIGHT)

    counts = suppression.add_rejected_contacts(NIGHT + timedelta(days=1))

    assert counts["listed"] == 0
    assert suppression.suppressed(["rosa@client.example"]) == {}


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        (" Mixed@Case.Example\n", "mixed@case.example"),
        ("josé@Müller.de", "josé@xn--mller-kva.de"),
        ("not an address", "not an address"),
        ("", ""),
        ("X@" + "Ü" * 70 + ".example", "x@" + "ü" * 70 + ".example"),  # label too long
    ],
)
def test_normalise(raw, normal):
    assert suppression.normalise(raw) == normal
