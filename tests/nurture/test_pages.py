"""The RPH page shows the lead's enrollment (steps sent with their outbox status, next due,
why it stopped) to those who may see the lead, and records a reply; the admin previews a
template for a real lead."""

import pytest
import time_machine
from django.urls import reverse

from crm.models import RPH
from mailsync.models import OutboxMessage
from nurture.jobs import nurture_send
from nurture.models import Enrollment
from tests.factories import TeamFactory, UserFactory
from tests.nurture.conftest import EmailTemplateFactory, enrol, make_sequence, run_at


@pytest.fixture
def lead(sequence, rep):
    rph = enrol(owner=rep, name="Ana Lopez")
    nurture_send(run_at(2))
    nurture_send(run_at(4))
    OutboxMessage.objects.filter(key__endswith=f":{sequence.steps.get(order=1).pk}").update(
        status=OutboxMessage.Status.SENT
    )
    return rph


@pytest.mark.django_db
def test_the_page_shows_steps_sent_and_the_next_one(lead, rep, client):
    client.force_login(rep)

    page = client.get(reverse("nurture:rph", args=[lead.pk])).content.decode()

    assert "Ana Lopez" in page and "Nurture P2" in page
    assert page.count('class="outbox-status"') == 2
    assert ">Sent<" in page and ">Queued<" in page
    assert "step 3" in page and "Sun 8 Mar 2026" in page  # the next step and its day
    assert 'id="record-reply"' in page


@pytest.mark.django_db
def test_the_reply_button_stops_the_sequence(lead, rep, client):
    client.force_login(rep)

    with time_machine.travel(run_at(5, hour=11), tick=False):
        response = client.post(reverse("nurture:reply", args=[lead.pk]), follow=True)

    page = response.content.decode()
    assert "Reply recorded" in page and "replied on 05 Mar 2026" in page
    lead.refresh_from_db()
    assert lead.status == RPH.Status.CONTACTED
    assert Enrollment.objects.get(rph=lead).status == Enrollment.Status.REPLIED


@pytest.mark.django_db
def test_a_stop_reason_and_a_suppressed_address_are_shown(sequence, rep, client):
    from mailsync.models import Suppression
    from mailsync.suppression import suppress

    rph = enrol(owner=rep, email="gone@prospect.example")
    suppress(rph.email, Suppression.Source.BOUNCE, "Mailbox does not exist", run_at(1))
    nurture_send(run_at(2))
    client.force_login(rep)

    page = client.get(reverse("nurture:rph", args=[rph.pk])).content.decode()

    assert '<span class="overdue" id="suppressed">suppressed: Mailbox does not exist' in page
    assert "is suppressed: Mailbox does not exist" in page and "not sent" in page


@pytest.mark.django_db
def test_another_team_cannot_see_or_reply(lead, client):
    outsider = UserFactory(username="sam_south", role="manager", team=TeamFactory(name="South"))
    client.force_login(outsider)

    assert client.get(reverse("nurture:rph", args=[lead.pk])).status_code == 404
    assert client.post(reverse("nurture:reply", args=[lead.pk])).status_code == 404
    assert Enrollment.objects.get(rph=lead).status == Enrollment.Status.ACTIVE


@pytest.mark.django_db
def test_the_page_costs_the_same_queries_whatever_the_steps(lead, rep, client):
    client.force_login(rep)
    url = reverse("nurture:rph", args=[lead.pk])
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as before:
        client.get(url)
    nurture_send(run_at(8))
    with CaptureQueriesContext(connection) as after:
        client.get(url)

    assert len(before) == len(after)


@pytest.mark.django_db
def test_the_closed_run_page_lists_the_owners_leads(rep, client):
    make_sequence(waits=(0,), final_wait=1)
    rph = enrol(owner=rep, name="Carla Closed")
    nurture_send(run_at(2))
    nurture_send(run_at(3))
    client.force_login(rep)

    page = client.get(reverse("nurture:closed"), {"run": run_at(3).isoformat()})

    assert "Carla Closed" in page.content.decode() and f"/rph/{rph.pk}/" in page.content.decode()


@pytest.mark.django_db
def test_the_admin_previews_a_template_for_a_real_lead(administrator, rep, client):
    template = EmailTemplateFactory(
        subject="{{ first_name }} at {{ company }}", body="<p>Hi {{ first_name }}</p>"
    )
    rph = enrol(owner=rep, name="Ana Lopez", company="Initech")
    client.force_login(administrator)
    url = reverse("admin:nurture_emailtemplate_preview", args=[template.pk])

    page = client.get(url, {"rph": rph.pk}).content.decode()

    assert '<span id="preview-subject">Ana at Initech</span>' in page
    assert "&lt;p&gt;Hi Ana&lt;/p&gt;" in page  # inside the sandboxed iframe's srcdoc
    assert "Hi Ana" in page.split('id="preview-text"')[1]


@pytest.mark.django_db
def test_the_admin_refuses_a_bad_template_with_its_message(administrator, client):
    client.force_login(administrator)

    response = client.post(
        reverse("admin:nurture_emailtemplate_add"),
        {"name": "Bad", "subject": "Hi", "body": "{{ name|attr('__class__') }}"},
    )

    assert response.status_code == 200
    assert "The filter “attr” is not allowed" in response.content.decode()


@pytest.mark.django_db
def test_the_admin_edits_a_sequence_with_its_steps(administrator, client):
    first, second = EmailTemplateFactory(), EmailTemplateFactory()
    client.force_login(administrator)
    form = {
        "name": "P2",
        "active": "on",
        "final_wait_days": "10",
        "steps-TOTAL_FORMS": "2",
        "steps-INITIAL_FORMS": "0",
        "steps-0-order": "2",
        "steps-0-template": first.pk,
        "steps-0-wait_days": "3",
        "steps-1-order": "1",
        "steps-1-template": second.pk,
        "steps-1-wait_days": "0",
    }

    response = client.post(reverse("admin:nurture_sequence_add"), form)

    assert response.status_code == 302, response.content.decode()[:3000]
    from nurture.models import Sequence

    steps = Sequence.objects.get(name="P2").steps.order_by("order")
    assert [s.template for s in steps] == [second, first]
