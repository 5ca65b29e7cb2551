"""The contact page and its status: a contact's status changed with a reason (required to
reject, audited: who, when, from, to, why); a rejected contact's page says when tonight's
suppression run lists its address, and once it has, "suppressed since …, why"; un-rejecting
does not lift the suppression, an administrator does, with a reason."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from crm import contacts, runner
from crm.models import Contact, ContactStatusChange
from crm.schedules import sync_schedules
from mailsync import suppression
from mailsync.models import Suppression, SuppressionLift
from tests.clients import HTMX, logged_in
from tests.factories import AccountFactory, ContactFactory, LeadFactory, TeamFactory, UserFactory

CHANGED = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)  # a Monday afternoon
NIGHT = datetime(2026, 11, 3, 1, 15, tzinfo=UTC)  # the suppression run's slot (TIME_ZONE: UTC)
WHY = "Asked us never to write again"


@pytest.fixture
def acme(north):
    return AccountFactory(name="Acme", team=north)


@pytest.fixture
def ana(acme):
    return ContactFactory(name="Ana Lopez", email="Ana@Acme.example", account=acme)


@pytest.fixture
def sam(db):
    return UserFactory(username="sam", role="rep", team=TeamFactory(name="South"))


def change(client, contact, to, reason="", **kwargs):
    with time_machine.travel(CHANGED, tick=False):
        return client.post(f"/contacts/{contact.pk}/status", {"to": to, "reason": reason}, **kwargs)


def page_of(client, contact, at=CHANGED) -> str:
    with time_machine.travel(at, tick=False):
        response = client.get(f"/contacts/{contact.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_rep_changes_a_status_and_it_is_audited(rita, ana):
    client = logged_in(rita)
    assert 'id="status-form"' in page_of(client, ana)

    response = change(client, ana, "bounced", "  hard bounce  ")

    assert response["Location"] == f"/contacts/{ana.pk}/"
    ana.refresh_from_db()
    assert (ana.status, ana.status_reason, ana.status_changed_at) == (
        "bounced",
        "hard bounce",
        CHANGED,
    )
    audit = ContactStatusChange.objects.get()
    assert (audit.contact, audit.by, audit.at, audit.from_status, audit.to_status) == (
        ana,
        rita,
        CHANGED,
        "active",
        "bounced",
    )
    assert audit.reason == "hard bounce"
    assert "<td>Rita</td><td>Active</td><td>Bounced</td><td>hard bounce</td>" in page_of(
        client, ana
    )


def test_rejecting_needs_a_reason_and_keeps_what_was_typed(rita, ana):
    response = change(logged_in(rita), ana, "rejected", "   ")

    page = response.content.decode()
    assert response.status_code == 400
    assert "Reason: Give a reason for rejecting the contact." in page
    assert '<option value="rejected" selected>' in page
    assert Contact.objects.get().status == "active" and not ContactStatusChange.objects.exists()
    with pytest.raises(contacts.NotAllowed, match="give a reason"):
        contacts.change_status(ana, "rejected", "", rita, CHANGED)


def test_a_reason_of_500_characters_is_kept_whole_and_longer_or_hostile_ones_refused(rita, ana):
    client = logged_in(rita)

    for hostile in ("x" * 501, "x" * 10_000, "bad\x00reason"):
        refused = change(client, ana, "rejected", hostile)
        assert refused.status_code == 400 and 'class="message error form-error"' in (
            refused.content.decode()
        )
    accepted = change(client, ana, "rejected", "é" * 500)

    assert accepted.status_code == 302
    assert Contact.objects.get().status_reason == "é" * 500
    assert ContactStatusChange.objects.get().reason == "é" * 500


def test_the_same_status_or_an_unknown_one_is_refused_on_the_page(rita, ana):
    client = logged_in(rita)

    same = change(client, ana, "active")
    unknown = change(client, ana, "deleted")

    assert same.status_code == 400
    assert "Not changed: the contact is Active already." in same.content.decode()
    assert unknown.status_code == 400 and "New status: Select a valid choice." in (
        unknown.content.decode()
    )
    assert not ContactStatusChange.objects.exists()


def test_two_changes_from_the_same_status_cannot_both_win(rita, ana):
    stale = Contact.objects.get(pk=ana.pk)
    contacts.change_status(ana, "rejected", WHY, rita, CHANGED)

    with pytest.raises(contacts.NotAllowed, match="someone else changed its status"):
        contacts.change_status(stale, "bounced", "", rita, CHANGED)
    assert Contact.objects.get().status == "rejected" and ContactStatusChange.objects.count() == 1


def test_htmx_changes_in_place_and_gets_the_page_back(rita, ana):
    client = logged_in(rita)

    done = change(client, ana, "unsubscribed", headers=HTMX, follow=True)
    wrong = change(client, ana, "rejected", headers=HTMX)

    assert 'id="contact-main"' in done.content.decode()
    assert wrong.status_code == 200 and 'id="contact-main"' in wrong.content.decode()
    assert "Give a reason" in wrong.content.decode()
    assert Contact.objects.get().status == "unsubscribed"


def test_only_who_may_work_on_the_contact_changes_its_status(rita, ana, north, sam):
    finance = UserFactory(username="fin", role="finance", team=north)

    assert logged_in(rita).get(f"/contacts/{ana.pk}/status").status_code == 405
    assert change(logged_in(finance), ana, "rejected", WHY).status_code == 403
    assert change(logged_in(sam), ana, "rejected", WHY).status_code == 404
    assert change(logged_in(rita, enforce_csrf_checks=True), ana, "bounced").status_code == 403
    assert 'id="status-form"' not in page_of(logged_in(finance), ana)
    assert Contact.objects.get().status == "active"


# --- Rejected, suppressed, un-rejected, lifted --------------------------------------------------


def test_rejecting_says_when_tonights_run_lists_the_address(rita, ana):
    client = logged_in(rita)

    response = change(client, ana, "rejected", WHY, follow=True)

    page = response.content.decode()
    assert "Ana Lopez” is now Rejected." in page and f"Reason: {WHY}" in page
    assert "tonight's suppression run, at <time" in page
    assert "Tue 3 Nov 2026 01:15" in page  # the job's schedule
    assert "does not lift the suppression" in page
    assert not suppression.suppressed([ana.email])


def test_the_page_follows_the_schedule_an_administrator_set(rita, ana):
    sync_schedules()
    task = PeriodicTask.objects.select_related("crontab").get(name="suppression_build")
    task.crontab.hour = "3"
    task.crontab.save()
    contacts.change_status(ana, "rejected", WHY, rita, CHANGED)
    client = logged_in(rita)

    assert "Tue 3 Nov 2026 03:15" in page_of(client, ana)
    PeriodicTask.objects.filter(pk=task.pk).update(enabled=False)
    assert "the suppression run is switched off" in page_of(client, ana)


def test_the_run_lists_a_rejected_contact_with_its_reason_and_the_page_shows_it(rita, ana):
    client = logged_in(rita)
    change(client, ana, "rejected", WHY)

    run = runner.run_job("suppression_build", NIGHT)

    assert run.counts == {"listed": 1, "non_ascii": 0}
    row = Suppression.objects.get()
    assert (row.address, row.source, row.reason) == (
        "ana@acme.example",
        "rejected",
        f"Contact “Ana Lopez” is rejected: {WHY}",
    )
    page = page_of(client, ana, NIGHT + timedelta(hours=8))
    assert "Suppressed since <time" in page and "Tue 3 Nov 2026 01:15" in page
    assert f"Why (rejected contact): Contact “Ana Lopez” is rejected: {WHY}<" in page
    assert "tonight" not in page and 'id="lift-form"' not in page  # a rep does not lift


def test_the_listed_reason_is_cut_to_its_column_in_sql_and_in_python(rita, acme):
    ascii_ = ContactFactory(name="N" * 200, email="long@acme.example", account=acme)
    idn = ContactFactory(name="M" * 200, email="long@bücher.example", account=acme)
    for contact in (ascii_, idn):
        contacts.change_status(contact, "rejected", "r" * 500, rita, CHANGED)
    ContactFactory(email="plain@acme.example", account=acme, status="rejected")  # no reason

    assert suppression.add_rejected_contacts(NIGHT) == {"listed": 3, "non_ascii": 1}

    reasons = dict(Suppression.objects.values_list("address", "reason"))
    expected = f"Contact “{'N' * 200}” is rejected: {'r' * 500}"[:500]
    assert reasons["long@acme.example"] == expected
    assert reasons["long@xn--bcher-kva.example"] == expected.replace("N", "M")
    assert reasons["plain@acme.example"].endswith("” is rejected")


def test_un_rejecting_does_not_lift_the_suppression_and_the_page_says_so(rita, ana):
    client = logged_in(rita)
    change(client, ana, "rejected", WHY)
    runner.run_job("suppression_build", NIGHT)
    ana.refresh_from_db()

    contacts.change_status(ana, "active", "talked again", rita, NIGHT + timedelta(hours=9))
    runner.run_job("suppression_build", NIGHT + timedelta(days=1))

    assert "ana@acme.example" in suppression.suppressed([ana.email])
    page = page_of(client, ana, NIGHT + timedelta(days=1, hours=9))
    assert "Suppressed since" in page
    assert "no longer rejected, but that does not lift the suppression" in page


def test_an_administrator_lifts_the_suppression_with_a_reason(rita, ana, administrator):
    contacts.change_status(ana, "rejected", WHY, rita, CHANGED)
    suppression.add_rejected_contacts(NIGHT)
    client = logged_in(administrator)
    assert 'id="lift-form"' in page_of(client, ana, NIGHT)

    missing = client.post(f"/contacts/{ana.pk}/lift", {"why": ""})
    with time_machine.travel(NIGHT + timedelta(hours=9), tick=False):
        lifted = client.post(f"/contacts/{ana.pk}/lift", {"why": "She wrote to us first"})

    assert missing.status_code == 400 and "Why lift it: This field is required." in (
        missing.content.decode()
    )
    assert lifted["Location"] == f"/contacts/{ana.pk}/"
    assert suppression.suppressed([ana.email]) == {}
    audit = SuppressionLift.objects.get()
    assert (audit.address, audit.lifted_by, audit.why) == (
        "ana@acme.example",
        administrator,
        "She wrote to us first",
    )
    assert "Suppressed since" not in page_of(client, ana, NIGHT + timedelta(hours=10))


def test_nobody_but_an_administrator_lifts(rita, ana, north, sam):
    manager = UserFactory(username="mgr", role="manager", team=north)
    contacts.change_status(ana, "rejected", WHY, rita, CHANGED)
    suppression.add_rejected_contacts(NIGHT)

    for user, status in ((rita, 403), (manager, 403), (sam, 404)):
        response = logged_in(user).post(f"/contacts/{ana.pk}/lift", {"why": "please"})
        assert response.status_code == status
    assert logged_in(rita).get(f"/contacts/{ana.pk}/lift").status_code == 405
    assert suppression.suppressed([ana.email]) and not SuppressionLift.objects.exists()


# --- The page ----------------------------------------------------------------------------------


def test_the_page_shows_details_account_leads_and_email_links(rita, ana):
    LeadFactory(name="Ana's lead", owner=rita, contact=ana)
    LeadFactory(name="Someone else's lead", owner=rita)

    page = page_of(logged_in(rita), ana)

    assert "<h1>Ana Lopez</h1>" in page and "Ana@Acme.example" in page
    assert f'href="/contacts/{ana.pk}/edit"' in page
    assert 'id="contact-account">Acme</a>' in page
    assert "Ana&#x27;s lead" in page and "Someone else" not in page
    assert f'href="/contacts/{ana.pk}/emails/" id="contact-emails"' in page
    assert 'id="email-threads"' in page


def test_another_teams_user_finds_nothing(ana, sam):
    client = logged_in(sam)

    assert client.get(f"/contacts/{ana.pk}/").status_code == 404
    assert client.get(f"/contacts/{ana.pk}/edit").status_code == 404


@pytest.mark.parametrize("rows", [1, 30])
def test_the_page_runs_a_constant_number_of_queries(
    rows, rita, acme, administrator, django_assert_num_queries
):
    contact = ContactFactory(name="Ana", email="ana@acme.example", account=acme)
    for n in range(rows):
        LeadFactory(owner=rita, contact=contact)
        contacts.change_status(
            contact, "rejected" if n % 2 == 0 else "active", "why", rita, CHANGED + timedelta(n)
        )
    suppression.suppress(contact.email, "manual", "by hand", timezone.now())
    client = logged_in(administrator)
    client.get(f"/contacts/{contact.pk}/")

    # session, user, gate; the contact, its suppression, its leads, its history, the
    # schedule (rejected, not listed) or none; its linked addresses, its threads
    with django_assert_num_queries(9):
        assert client.get(f"/contacts/{contact.pk}/").status_code == 200


def test_the_contact_admin_lists_its_status_changes_read_only(rita, ana, administrator):
    contacts.change_status(ana, "rejected", WHY, rita, CHANGED)

    page = logged_in(administrator).get(f"/admin/crm/contact/{ana.pk}/change/")

    assert page.status_code == 200 and WHY in page.content.decode()
    inline = page.context["inline_admin_formsets"][0]
    assert inline.formset.model is ContactStatusChange and not inline.has_add_permission
