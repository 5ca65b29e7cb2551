"""Linking an email to a record by hand: an address of an email not linked to anything is
linked to a contact, lead or account, and that address's mail, past and future, is the
record's. Only an email one may read, only to a record one may see; walked as someone of
another team, no new page shows anything of theirs."""

from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import RPH
from mailsync.models import LinkedAddress
from tests.clients import HTMX, logged_in
from tests.factories import AccountFactory, TeamFactory, UserFactory
from tests.mailsync.factories import ContactFactory, RPHFactory
from tests.mailsync.test_email_list import NOW, listed, mail, mailbox_of


@pytest.fixture
def box(rep):
    return mailbox_of(rep, "rita@vigil.example")


@pytest.fixture
def ana(rep):
    return ContactFactory(
        account__team=rep.team, account__name="Acme", name="Ana Alvarez", email="ana@acme.example"
    )


def link(user, email, record: str, address: str, **kwargs):
    url = f"/mail/emails/{email.pk}/link"
    return logged_in(user).post(url, {"record": record, "address": address}, **kwargs)


def page_of(user, email, **params) -> str:
    return logged_in(user).get(f"/mail/emails/{email.pk}/", params).content.decode()


def test_a_linked_address_brings_its_mail_past_and_future_to_the_contact(rep, box, ana):
    first = mail(box, "From her home address", sender="Ana <ana.home@private.example>")
    assert "Not linked to any contact, lead or account you can see." in page_of(rep, first)
    found = page_of(rep, first, find="alvarez")
    assert f'value="contact:{ana.pk}"' in found
    assert '<option value="ana.home@private.example">' in found

    response = link(rep, first, f"contact:{ana.pk}", "Ana.Home@Private.Example")

    assert response.status_code == 302 and response["Location"] == f"/mail/emails/{first.pk}/"
    linked = LinkedAddress.objects.get()
    assert (linked.address, linked.contact, linked.email, linked.linked_by) == (
        "ana.home@private.example",
        ana,
        first,
        rep,
    )
    later = mail(box, "Later, same address", sender="ana.home@private.example", at=NOW)
    for url in (f"/contacts/{ana.pk}/emails/", f"/accounts/{ana.account_id}/emails/"):
        threads = logged_in(rep).get(url).content.decode()
        assert "From her home address" in threads and "Later, same address" in threads
    shown = page_of(rep, later)
    assert f'data-linked="contact:{ana.pk}"' in shown and "linked by hand" in shown
    assert listed(rep, "?unlinked=1") == []


def test_an_address_linked_to_a_lead_or_an_account_is_theirs(rep, box):
    lead = RPHFactory(owner=rep, name="Leo Lead", email="leo@lead.example")
    account = AccountFactory(team=rep.team, name="Globex")
    email = mail(
        box, "Two people", sender="pa@lead.example", to=f"{box.address}, ap@globex.example"
    )

    link(rep, email, f"rph:{lead.pk}", "pa@lead.example")
    link(rep, email, f"account:{account.pk}", "ap@globex.example")

    for url in (
        f"/rph/{lead.pk}/emails/",
        f"/rph/{lead.pk}/",  # the lead page's threads
        f"/accounts/{account.pk}/emails/",
        f"/accounts/{account.pk}/",  # the account page's threads
    ):
        assert "Two people" in logged_in(rep).get(url).content.decode(), url
    shown = page_of(rep, email)
    assert f'data-linked="rph:{lead.pk}"' in shown
    assert f'data-linked="account:{account.pk}"' in shown


@pytest.mark.parametrize("kind", ["contact", "rph", "account"])
def test_a_link_to_a_record_of_another_team_leaves_my_mail_not_linked(rep, box, kind):
    """Whether an email is linked is decided by the records I may see: an address another
    team linked to one of theirs does not link my mail, one linked to one of ours does."""
    south = UserFactory(username="sol_south", role="rep", team=TeamFactory(name="South"))
    records = {
        "contact": lambda user: ContactFactory(account__team=user.team, email="c@else.example"),
        "rph": lambda user: RPHFactory(owner=user, email="l@else.example"),
        "account": lambda user: AccountFactory(team=user.team),
    }
    address = "pa@partner.example"
    mail(box, "From a partner", sender=address)
    theirs = records[kind](south)
    LinkedAddress.objects.create(address=address, linked_at=NOW, **{kind: theirs})

    assert listed(rep, "?unlinked=1") == ["From a partner"]

    ours = records[kind](rep)
    LinkedAddress.objects.create(address=address, linked_at=NOW, **{kind: ours})

    assert listed(rep, "?unlinked=1") == []


def test_not_linked_follows_a_user_who_changes_team_or_becomes_a_superuser(rep, box):
    """The condition is compiled once per user (backlog._unlinked): a move to another team,
    or a superuser's rights, must read it anew."""
    south = TeamFactory(name="South")
    ContactFactory(account__team=south, email="sid@south.example")
    mail(box, "From Sid", sender="sid@south.example")
    assert listed(rep, "?unlinked=1") == ["From Sid"]

    rep.team = south
    rep.save()
    assert listed(rep, "?unlinked=1") == []

    rep.team = TeamFactory(name="East")
    rep.save()
    assert listed(rep, "?unlinked=1") == ["From Sid"]

    rep.is_superuser = True  # an administrator, whatever the role says
    rep.save()
    assert listed(rep, "?unlinked=1") == []


def test_an_email_shows_the_records_its_addresses_are(rep, box, ana):
    email = mail(box, "From Ana", sender="ANA@acme.example")

    shown = page_of(rep, email)

    assert f'data-linked="contact:{ana.pk}"' in shown and "linked by hand" not in shown
    assert "Not linked" not in shown


def test_linking_twice_changes_nothing(rep, box, ana):
    email = mail(box, "Hello", sender="ana.home@private.example")

    for _ in range(2):
        assert link(rep, email, f"contact:{ana.pk}", "ana.home@private.example").status_code == 302

    assert LinkedAddress.objects.count() == 1


def test_our_own_addresses_are_not_offered_nor_linked(rep, box, ana, settings):
    settings.VIGIL_MAIL_DOMAIN = "vigil.example"
    email = mail(
        box, "Cc'd", sender="stranger@else.example", to=f"{box.address}, bot@vigil.example"
    )

    found = page_of(rep, email, find="ana")
    response = logged_in(rep).post(
        f"/mail/emails/{email.pk}/link",
        {"record": f"contact:{ana.pk}", "address": box.address},
        follow=True,
    )

    assert '<option value="stranger@else.example">' in found
    assert (
        f'<option value="{box.address}">' not in found and "bot@vigil.example</option>" not in found
    )
    assert f"{box.address} is not one of this email's to link." in unescape(
        response.content.decode()
    )
    assert not LinkedAddress.objects.exists()


def test_a_link_without_a_record_says_so(rep, box):
    email = mail(box, "Hello", sender="x@else.example")

    response = logged_in(rep).post(
        f"/mail/emails/{email.pk}/link",
        {"record": "task:1", "address": "x@else.example"},
        follow=True,
    )

    assert "Choose one of the email's addresses and a record to link it to." in unescape(
        response.content.decode()
    )


def test_with_htmx_the_links_section_is_swapped_in_place(rep, box, ana):
    email = mail(box, "Hello", sender="ana.home@private.example")

    found = logged_in(rep).get(f"/mail/emails/{email.pk}/", {"find": "ana"}, headers=HTMX)
    linked = link(rep, email, f"contact:{ana.pk}", "ana.home@private.example", headers=HTMX)

    assert found.content.decode().startswith('<section class="card" id="email-links">')
    html = linked.content.decode()
    assert linked.status_code == 200 and html.startswith('<section class="card" id="email-links">')
    assert "ana.home@private.example is linked to Ana Alvarez" in html
    assert f'data-linked="contact:{ana.pk}"' in html


def test_only_an_email_i_may_read_and_only_to_a_record_i_may_see(rep, box, ana):
    south = UserFactory(username="sol_south", role="rep", team=TeamFactory(name="South"))
    theirs = mail(mailbox_of(south, "sol@vigil.example"), "South's", sender="s@else.example")
    mine = mail(box, "Mine", sender="m@else.example")
    their_lead = RPHFactory(owner=south, name="Ana South", email="ana@south.example")

    assert link(rep, theirs, f"contact:{ana.pk}", "s@else.example").status_code == 404
    assert link(rep, mine, f"rph:{their_lead.pk}", "m@else.example").status_code == 404
    assert f"rph:{their_lead.pk}" not in page_of(rep, mine, find="ana")
    assert not LinkedAddress.objects.exists()
    assert link(rep, mine, f"contact:{ana.pk}", "m@else.example").status_code == 302
    assert list(LinkedAddress.objects.values_list("address", "contact")) == [
        ("m@else.example", ana.pk)
    ]


def test_an_email_page_and_thread_pages_cost_the_same_queries_with_one_link_or_many(rep, box):
    account = AccountFactory(team=rep.team)
    lead = RPHFactory(owner=rep)
    email = mail(box, "Hello", sender="one@else.example")
    urls = [
        f"/mail/emails/{email.pk}/",
        f"/mail/emails/{email.pk}/?find=Contact",
        f"/accounts/{account.pk}/emails/",
        f"/rph/{lead.pk}/emails/",
    ]

    def costs():
        client = logged_in(rep)
        counted = []
        for url in urls:
            with CaptureQueriesContext(connection) as queries:
                assert client.get(url).status_code == 200
            counted.append(len(queries))
        return counted

    ContactFactory(account=account, email="one@else.example")
    link(rep, email, f"rph:{lead.pk}", "one@else.example")
    one = costs()
    for n in range(8):
        other = ContactFactory(account=account, email=f"c{n}@else.example")
        mail(box, f"Mail {n}", sender=f"h{n}@else.example", at=NOW - timedelta(hours=n))
        LinkedAddress.objects.create(address=f"h{n}@else.example", contact=other, linked_at=NOW)
        LinkedAddress.objects.create(address="one@else.example", contact=other, linked_at=NOW)
        LinkedAddress.objects.create(address=f"h{n}@else.example", rph=lead, linked_at=NOW)
    many = costs()

    assert one == many, (one, many)
    shown = page_of(rep, email)
    assert shown.count('data-linked="contact:') == 9 and f'data-linked="rph:{lead.pk}"' in shown
    assert "Mail 7" in logged_in(rep).get(f"/rph/{lead.pk}/emails/").content.decode()


SECRET = "NORTHSECRET"


@pytest.fixture
def north(db):
    """Another team's mailbox, mail, records and hand links, all carrying SECRET."""
    team = TeamFactory(name="North")
    nora = UserFactory(username="nora_north", role="rep", team=team)
    box = mailbox_of(nora, "nora@north.example")
    contact = ContactFactory(
        account__team=team, account__name=f"{SECRET} Acme", name=f"{SECRET} Carla"
    )
    lead = RPH.objects.create(
        name=f"{SECRET} Lead", email="lead@north.example", owner=nora, status_changed_at=NOW
    )
    email = mail(box, f"{SECRET} floor", body=f"{SECRET} 41,000", sender=contact.email)
    mail(box, f"{SECRET} reply", sender=box.address, to=contact.email, folder="sent")
    link(nora, email, f"rph:{lead.pk}", contact.email)
    return {"email": email, "contact": contact, "lead": lead, "account": contact.account}


@pytest.mark.parametrize("role", ["rep", "manager"])
def test_every_new_url_shows_and_links_nothing_of_another_team(north, role):
    stranger = UserFactory(username=f"sam_{role}", role=role, team=TeamFactory(name="South"))
    box = mailbox_of(stranger, f"sam_{role}@south.example")
    contact, lead = north["contact"], north["lead"]
    # Mail of mine from North's contact's address: its page must not name North's records.
    own = mail(box, "Hello from Carla", sender=contact.email)
    south_contact = ContactFactory(account__team=stranger.team, name="Sid South")
    north_email = north["email"]
    links = LinkedAddress.objects.count()
    client = logged_in(stranger)
    gets = [
        "/mail/",
        "/mail/?q=northsecr",
        "/mail/?unlinked=1",
        "/mail/?direction=outbound&crm=1",
        f"/mail/?thread={north_email.thread_key}",
        f"/mail/emails/{own.pk}/",
        f"/mail/emails/{own.pk}/?find=northsecr",
        f"/mail/emails/{own.pk}/?find=Carla",
        f"/mail/emails/{north_email.pk}/",
        f"/mail/emails/{north_email.pk}/?find=northsecr",
    ]
    for url in gets:
        for headers in ({}, HTMX):
            body = client.get(url, headers=headers).content.decode()
            assert SECRET not in body, url
    posts = [
        (north_email, f"contact:{south_contact.pk}", contact.email),
        (own, f"contact:{contact.pk}", contact.email),
        (own, f"rph:{lead.pk}", contact.email),
        (own, f"account:{north['account'].pk}", contact.email),
    ]
    for email, record, address in posts:
        response = link(stranger, email, record, address, follow=True)
        assert response.status_code == 404, (email, record)
        assert SECRET not in response.content.decode()

    assert listed(stranger, "?unlinked=1") == ["Hello from Carla"]
    assert LinkedAddress.objects.count() == links


def test_a_rep_links_mail_only_to_their_own_leads(rep, box):
    """A rep sees their team's leads but acts on their own (the lead pages' rule): a
    teammate's lead is neither offered nor linked."""
    teammate = UserFactory(username="ron_rep", role="rep", team=rep.team)
    theirs = RPHFactory(owner=teammate, name="Ron's secret lead", email="ron.lead@x.example")
    own = RPHFactory(owner=rep, name="Rita's secret lead", email="rita.lead@x.example")
    email = mail(box, "Secret", sender="pa@x.example")

    shown = page_of(rep, email, find="secret")

    assert f"rph:{own.pk}" in shown and f"rph:{theirs.pk}" not in shown
    assert link(rep, email, f"rph:{theirs.pk}", "pa@x.example").status_code == 404
    assert not LinkedAddress.objects.exists()
    assert link(rep, email, f"rph:{own.pk}", "pa@x.example").status_code == 302


def test_a_nul_in_the_record_search_is_ignored_not_a_server_error(rep, box):
    email = mail(box, "Hello", sender="pa@x.example")

    response = logged_in(rep).get(f"/mail/emails/{email.pk}/", {"find": "a\x00b"})

    assert response.status_code == 200
