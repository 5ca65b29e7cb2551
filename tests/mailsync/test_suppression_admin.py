"""Staff see in the admin that a contact's or an RPH lead's address is suppressed and why;
administrators lift a suppression with a reason, which is audited (who, when, why)."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import Permission

from mailsync import suppression
from mailsync.models import Suppression, SuppressionLift
from tests.factories import TeamFactory, UserFactory
from tests.mailsync.factories import ContactFactory, RPHFactory, SuppressionFactory

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
REASON = "Postmark reported bounced: unknown user"


@pytest.fixture
def admin_client(client, administrator):
    client.force_login(administrator)
    return client


@pytest.fixture
def rosa(db):
    SuppressionFactory(address="rosa@client.example", reason=REASON)
    return ContactFactory(name="Rosa", email="Rosa@Client.example")


@pytest.mark.django_db
def test_the_contact_list_shows_and_filters_suppressed_addresses(admin_client, rosa):
    ContactFactory(name="Tom", email="tom@client.example")

    everyone = admin_client.get("/admin/crm/contact/")
    only = admin_client.get("/admin/crm/contact/?suppressed=yes")
    others = admin_client.get("/admin/crm/contact/?suppressed=no")

    assert REASON in everyone.text and "Suppressed" in everyone.text
    assert [c.name for c in only.context["cl"].result_list] == ["Rosa"]
    assert [c.name for c in others.context["cl"].result_list] == ["Tom"]


@pytest.mark.django_db
def test_a_contact_and_an_rph_page_say_why_their_address_is_suppressed(admin_client, rosa):
    lead = RPHFactory(name="Lena", email="rosa@client.example ")
    idn = ContactFactory(name="Ana", email="ana@bücher.example")
    SuppressionFactory(address="ana@xn--bcher-kva.example", reason="Contact “Ana” is rejected")

    contact_page = admin_client.get(f"/admin/crm/contact/{rosa.pk}/change/")
    lead_page = admin_client.get(f"/admin/crm/rph/{lead.pk}/change/")
    idn_page = admin_client.get(f"/admin/crm/contact/{idn.pk}/change/")

    assert "Email suppression" in contact_page.text and REASON in contact_page.text
    assert "(Bounce)" in contact_page.text and "lift it" in contact_page.text
    assert REASON in lead_page.text
    assert "Contact “Ana” is rejected" in idn_page.text


@pytest.mark.django_db
def test_an_address_not_on_the_list_says_so(admin_client):
    tom = ContactFactory(name="Tom", email="tom@client.example")

    page = admin_client.get(f"/admin/crm/contact/{tom.pk}/change/")

    assert "Not suppressed" in page.text


def lift_post(client, rows, **extra):
    data = {"action": "lift_suppressions", "_selected_action": [r.pk for r in rows], **extra}
    return client.post("/admin/mailsync/suppression/", data)


@time_machine.travel(NOW, tick=False)
@pytest.mark.django_db
def test_an_administrator_lifts_a_suppression_with_a_reason_and_it_is_audited(
    admin_client, administrator, rosa
):
    row = Suppression.objects.get()

    asked = lift_post(admin_client, [row])
    refused = lift_post(admin_client, [row], apply="Lift", why="")
    done = lift_post(admin_client, [row], apply="Lift", why="She confirmed the new mailbox")

    assert asked.status_code == 200 and "Why lift it" in asked.text
    assert refused.status_code == 200 and "This field is required" in refused.text
    assert done.status_code == 302
    row.refresh_from_db()
    assert row.lifted_at == NOW
    audit = SuppressionLift.objects.get()
    assert (audit.lifted_by, audit.lifted_at, audit.why) == (
        administrator,
        NOW,
        "She confirmed the new mailbox",
    )
    assert (audit.address, audit.previous_source, audit.previous_reason) == (
        "rosa@client.example",
        "bounce",
        REASON,
    )
    assert suppression.suppressed(["rosa@client.example"]) == {}
    assert (
        "She confirmed the new mailbox" in admin_client.get("/admin/mailsync/suppressionlift/").text
    )


@pytest.mark.django_db
def test_staff_without_the_permission_cannot_lift(client, rosa):
    rosa.account.team = TeamFactory(name="North")  # her contact is seen by her team only
    rosa.account.save()
    clerk = UserFactory(username="sam_staff", is_staff=True, team=rosa.account.team)
    clerk.user_permissions.add(*_perms("view_suppression", "view_contact"))
    client.force_login(clerk)

    response = lift_post(client, Suppression.objects.all(), apply="Lift", why="because")

    assert "lift_suppressions" not in client.get("/admin/mailsync/suppression/").text
    assert response.status_code in (200, 302)
    assert Suppression.objects.get().lifted_at is None
    assert not SuppressionLift.objects.exists()
    assert REASON in client.get("/admin/crm/contact/").text  # but sees the suppression


@pytest.mark.django_db
def test_staff_add_an_address_by_hand_normalised(admin_client):
    response = admin_client.post(
        "/admin/mailsync/suppression/add/",
        {"address": " Bob@Bücher.Example", "reason": "asked on the phone"},
    )

    assert response.status_code == 302
    row = Suppression.objects.get()
    assert (row.address, row.source) == ("bob@xn--bcher-kva.example", "manual")


def _perms(*codenames):
    return Permission.objects.filter(codename__in=codenames)
