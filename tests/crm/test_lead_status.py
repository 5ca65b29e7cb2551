"""The lead page: a lead's details and edit form, its status moved with one action (each move
audited: who, when, from, to), and its nurture enrollment as a timeline that starts when the
lead enters Nurture P2 and says why it stopped when the lead leaves."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from crm import leads
from crm.models import RPH, LeadStatusChange
from mailsync import outbox
from nurture.jobs import nurture_send
from nurture.models import Enrollment
from tests.clients import HTMX, logged_in
from tests.factories import LeadFactory, UserFactory
from tests.nurture.conftest import make_sequence, run_at

MOVED = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def lead(rita):
    created = MOVED - timedelta(days=1)
    return LeadFactory(name="Ana Lopez", company="Acme", owner=rita, status_changed_at=created)


def move(client, lead, to, **kwargs):
    with time_machine.travel(MOVED, tick=False):
        return client.post(f"/rph/{lead.pk}/status", {"to": to}, **kwargs)


def test_a_move_is_one_action_and_is_audited(rita, lead):
    client = logged_in(rita)
    assert 'data-move="contacted"' in client.get(f"/rph/{lead.pk}/").content.decode()

    response = move(client, lead, "contacted")

    assert response["Location"] == f"/rph/{lead.pk}/"
    lead.refresh_from_db()
    assert (lead.status, lead.status_changed_at, lead.last_activity_at) == (
        "contacted",
        MOVED,
        MOVED,
    )
    change = LeadStatusChange.objects.get()
    assert (change.rph, change.by, change.at, change.from_status, change.to_status) == (
        lead,
        rita,
        MOVED,
        "new",
        "contacted",
    )
    page = client.get(f"/rph/{lead.pk}/").content.decode()
    assert "<td>Rita</td><td>New</td><td>Contacted</td>" in page


def test_moving_to_nurture_p2_starts_the_sequence_and_the_page_shows_it(rita, lead):
    sequence = make_sequence(waits=(0, 3))
    client = logged_in(rita)

    move(client, lead, "nurture_p2")
    nurture_send(run_at(2))
    outbox.deliver(outbox.claim(run_at(2), 10), run_at(2))

    enrollment = Enrollment.objects.get(rph=lead)
    assert (enrollment.sequence, enrollment.status) == (sequence, Enrollment.Status.ACTIVE)
    with time_machine.travel(run_at(2, hour=9), tick=False):
        page = client.get(f"/rph/{lead.pk}/").content.decode()
    assert f'id="enrollment-{enrollment.pk}"' in page
    assert page.count('class="outbox-status"') == 1  # step 1 sent, with its email
    assert f'{sequence.name} step 1: <a href="/mail/emails/' in page  # the email as sent
    assert 'class="sent-email">Step 1: Acme</a>' in page
    assert 'class="next-step"' in page and f"{sequence.name} step 2" in page  # next, and when
    assert "Wed 4 Mar 2026 10:00" in page  # three days after step 1 was due


def test_moving_out_of_nurture_p2_stops_it_and_the_page_says_so(rita, lead):
    make_sequence()
    client = logged_in(rita)
    move(client, lead, "nurture_p2")

    response = move(client, lead, "closed", follow=True)

    enrollment = Enrollment.objects.get(rph=lead)
    assert enrollment.status == Enrollment.Status.STOPPED
    page = response.content.decode()
    assert "Left Nurture P2 (status now closed)" in page and 'id="stop-reason"' in page
    assert "moved to Closed" in page


def test_in_nurture_p2_without_a_sequence_the_page_says_it_waits(rita, lead):
    client = logged_in(rita)

    page = move(client, lead, "nurture_p2", follow=True).content.decode()

    assert 'id="nurture-waiting"' in page and not Enrollment.objects.exists()


def test_a_move_the_status_does_not_allow_is_refused_on_the_page(rita, lead):
    client = logged_in(rita)

    response = move(client, lead, "converted")

    assert response.status_code == 400
    assert "Not moved: a lead in New cannot move to Converted." in response.content.decode()
    assert RPH.objects.get().status == "new" and not LeadStatusChange.objects.exists()


def test_two_moves_from_the_same_status_cannot_both_win(rita, lead):
    stale = RPH.objects.get(pk=lead.pk)
    leads.move_status(lead, "contacted", rita, MOVED)

    with pytest.raises(leads.NotAllowed, match="someone else changed its status"):
        leads.move_status(stale, "closed", rita, MOVED)
    assert RPH.objects.get().status == "contacted" and LeadStatusChange.objects.count() == 1


def test_moves_are_post_only_and_only_for_who_may_change(rita, lead, north):
    teammate = UserFactory(username="ravi", role="rep", team=north)

    assert logged_in(rita).get(f"/rph/{lead.pk}/status?to=closed").status_code == 405
    assert move(logged_in(teammate), lead, "closed").status_code == 403
    assert move(logged_in(rita, enforce_csrf_checks=True), lead, "closed").status_code == 403
    assert RPH.objects.get().status == "new"


def test_htmx_moves_in_place_and_gets_the_page_back(rita, lead):
    client = logged_in(rita)

    response = move(client, lead, "contacted", headers=HTMX, follow=True)

    assert 'id="lead-main"' in response.content.decode()
    assert RPH.objects.get().status == "contacted"


def test_the_edit_form_saves_and_bumps_last_activity(rita, lead):
    client = logged_in(rita)

    with time_machine.travel(MOVED, tick=False):
        response = client.post(
            f"/rph/{lead.pk}/edit",
            {
                "name": "Ana López",
                "company": "Acme",
                "email": "ana@acme.example",
                "source": "referral",
            },
        )

    assert response["Location"] == f"/rph/{lead.pk}/"
    lead.refresh_from_db()
    assert (lead.name, lead.email, lead.source, lead.owner) == (
        "Ana López",
        "ana@acme.example",
        "referral",
        rita,
    )
    assert lead.last_activity_at == MOVED


def test_a_bad_edit_shows_one_line_per_error_and_keeps_the_input(rita, lead):
    response = logged_in(rita).post(
        f"/rph/{lead.pk}/edit", {"name": "", "company": "Typed Co", "email": "nope"}
    )

    page = response.content.decode()
    assert response.status_code == 400
    assert page.count('class="message error form-error"') == 2
    assert 'value="Typed Co"' in page and 'value="nope"' in page
    assert "<h1>Ana Lopez</h1>" in page  # the stored lead, unchanged
    assert RPH.objects.get().company == "Acme"


@pytest.mark.parametrize("moves", [1, 7])
def test_the_lead_page_runs_a_constant_number_of_queries(
    moves, rita, lead, django_assert_num_queries
):
    make_sequence()
    for n in range(moves):
        leads.move_status(
            lead, ["nurture_p2", "contacted"][n % 2], rita, MOVED + timedelta(minutes=n)
        )
    for day in range(2, 2 + moves):
        nurture_send(run_at(day))
    client = logged_in(rita)
    client.get(f"/rph/{lead.pk}/")

    # session, user, gate, lead, suppression, enrollments, their steps, their emails' outbox
    # rows and backlog rows, the status history, the addresses linked by hand, the threads
    with django_assert_num_queries(12):
        assert client.get(f"/rph/{lead.pk}/").status_code == 200
