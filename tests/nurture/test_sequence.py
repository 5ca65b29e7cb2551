"""nurture_send walks each lead through the P2 sequence: one step per due day, a reply stops
it, and a lead that never answers is closed for inactivity with a notice to its owner."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm import runner
from crm.models import RPH
from mailsync.models import OutboxMessage
from notifications.models import Notification
from nurture.jobs import nurture_send
from nurture.models import Enrollment, SentStep
from nurture.services import record_reply
from tests.nurture.conftest import ENROLLED, RPHFactory, enrol, make_sequence, run_at


def sent_subjects() -> list[str]:
    return list(OutboxMessage.objects.order_by("pk").values_list("subject", flat=True))


@pytest.mark.django_db
def test_a_whole_sequence_ends_closed_for_inactivity(sequence, owner):
    rph = enrol(owner=owner, company="Globex Foods")
    sent_on = {}

    for day in range(1, 32):  # every day of March at 08:00
        counts = nurture_send(run_at(day))
        if counts["sent"] or counts["closed"]:
            sent_on[day] = (counts["sent"], counts["closed"])

    # Enrolled Sunday 10:00: step 1 (wait 0) at Monday's run, then +3, +4, +7 days from each
    # due date, and the close 14 days after the last.
    assert sent_on == {2: (1, 0), 4: (1, 0), 8: (1, 0), 15: (1, 0), 29: (0, 1)}
    assert sent_subjects() == [f"Step {n}: Globex Foods" for n in (1, 2, 3, 4)]
    enrollment = Enrollment.objects.get(rph=rph)
    assert enrollment.status == Enrollment.Status.CLOSED
    assert enrollment.stop_reason == "inactivity" and enrollment.stopped_at == run_at(29)
    rph.refresh_from_db()
    assert rph.status == RPH.Status.CLOSED and rph.status_changed_at == run_at(29)
    notice = Notification.objects.get(user=owner)
    assert "closed for inactivity" in notice.title and not notice.blocking
    assert notice.link.startswith("/nurture/closed/?run=")


@pytest.mark.django_db
def test_each_email_is_the_step_rendered_for_the_lead(sequence, owner):
    rph = enrol(name="Ana Lopez", owner=owner, email="ana@prospect.example")

    nurture_send(run_at(2))

    message = OutboxMessage.objects.get()
    enrollment = Enrollment.objects.get()
    first_step = sequence.steps.order_by("order").first()
    assert message.key == f"nurture:{enrollment.pk}:{first_step.pk}"
    assert message.to == ["ana@prospect.example"] and message.reply_to == [owner.email]
    assert message.source == "nurture_send"
    assert "<p>Hello Ana,</p>" in message.html_body and "Olga Owner here" in message.html_body
    assert message.text_body.startswith("Hello Ana,\n\nOlga Owner here, from Vigil.")
    assert "/unsubscribe/" in message.text_body and "Unsubscribe</a>" in message.html_body
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/unsubscribe/" in message.headers["List-Unsubscribe"]
    assert SentStep.objects.get().outbox_key == message.key
    assert rph.nurture_enrollments.get().step.order == 2


@pytest.mark.django_db
def test_a_reply_stops_the_sequence(sequence, owner):
    rph = enrol(owner=owner)
    nurture_send(run_at(2))

    stopped = record_reply(rph, run_at(3, hour=15))

    assert stopped.status == Enrollment.Status.REPLIED
    rph.refresh_from_db()
    assert rph.status == RPH.Status.CONTACTED
    for day in range(4, 31):
        nurture_send(run_at(day))
    assert OutboxMessage.objects.count() == 1  # nothing after the reply
    notice = Notification.objects.get(user=owner)
    assert "replied" in notice.title and notice.link == f"/rph/{rph.pk}/"


@pytest.mark.django_db
def test_a_reply_after_the_close_reopens_the_lead(owner):
    make_sequence(waits=(0,), final_wait=1)
    rph = enrol(owner=owner)
    nurture_send(run_at(2))
    nurture_send(run_at(3))
    rph.refresh_from_db()
    assert rph.status == RPH.Status.CLOSED

    record_reply(rph, run_at(5))

    rph.refresh_from_db()
    assert rph.status == RPH.Status.CONTACTED
    assert Enrollment.objects.get().status == Enrollment.Status.REPLIED


@pytest.mark.django_db
def test_a_missed_week_is_caught_up_one_step_per_run(owner):
    make_sequence(waits=(0, 2, 2, 2), final_wait=14)
    enrol(owner=owner)
    nurture_send(run_at(2))  # step 1; then down until the 10th: steps 2 to 4 fell due meanwhile

    caught_up = [nurture_send(run_at(day))["sent"] for day in (10, 11, 12, 13)]

    assert caught_up == [1, 1, 1, 0]
    days = SentStep.objects.order_by("at").values_list("at__day", flat=True)
    assert list(days) == [2, 10, 11, 12]
    # The close still counts from the last step's due date (the 7th): 14 days later.
    assert nurture_send(run_at(20))["closed"] == 0
    assert nurture_send(run_at(21))["closed"] == 1


@pytest.mark.django_db
def test_re_runs_send_nothing_twice(sequence, owner):
    for _ in range(3):
        enrol(owner=owner)
    first = nurture_send(run_at(2))

    again = [nurture_send(run_at(2, hour=h)) for h in (8, 9, 23)]

    assert first["sent"] == 3 and [c["sent"] for c in again] == [0, 0, 0]
    assert OutboxMessage.objects.count() == SentStep.objects.count() == 3


@pytest.mark.django_db
def test_a_run_through_the_engine_and_its_dry_run(sequence, owner):
    enrol(owner=owner)

    dry = runner.run_job("nurture_send", run_at(2), dry_run=True)
    real = runner.run_job("nurture_send", run_at(2), force=True)

    assert dry.status == real.status == "succeeded"
    assert dry.counts["sent"] == real.counts["sent"] == 1
    assert OutboxMessage.objects.count() == 1


@pytest.mark.django_db
def test_a_template_that_fails_for_one_lead_is_recorded_and_the_run_goes_on(owner):
    sequence = make_sequence(waits=(0, 1))
    template = sequence.steps.get(order=1).template
    # Refused at save, but a row edited in the database must not stop the run either.
    template.body = "{{ company|truncate('x') }}"
    template.save()
    bad = enrol(owner=owner, company="Initech")
    good_sequence_lead = enrol(owner=owner)
    template.body = "{% if company == 'Initech' %}{{ company|truncate('x') }}{% endif %}ok"
    template.save()

    counts = nurture_send(run_at(2))

    assert counts["sent"] == 1 and counts["failed"] == 1
    failed = Enrollment.objects.get(rph=bad)
    assert failed.status == Enrollment.Status.ACTIVE and failed.step.order == 1
    assert "failed" in failed.last_error
    assert Enrollment.objects.get(rph=good_sequence_lead).step.order == 2
    # Fixed: the next run sends it.
    template.body = "<p>Fixed</p>"
    template.save()
    assert nurture_send(run_at(3))["sent"] == 2
    failed.refresh_from_db()
    assert failed.last_error == "" and failed.step.order == 2


@pytest.mark.django_db
def test_the_number_of_queries_does_not_grow_with_enrollments(sequence, owner):
    def queries_for(leads: int, day: int) -> int:
        for _ in range(leads):
            enrol(owner=owner)
        Enrollment.objects.update(enrolled_at=ENROLLED, next_due_at=ENROLLED)
        with CaptureQueriesContext(connection) as queries:
            counts = nurture_send(run_at(day))
        assert counts["sent"] == Enrollment.objects.filter(last_run_at=run_at(day)).count()
        return len(queries)

    few = queries_for(3, 2)
    Enrollment.objects.all().delete()
    many = queries_for(40, 3)  # SQLite splits INSERTs over 999 values: stay under

    assert few == many


@pytest.mark.django_db
def test_the_job_is_registered_every_quarter_hour():
    from crm import registry

    job = registry.get("nurture_send")
    assert job.schedule == "*/15 * * * *" and job.final_effects


@pytest.mark.django_db
def test_without_a_window_a_day_of_quarter_hour_runs_sends_at_eight_only(sequence, owner):
    """Runs every quarter hour send what the daily 08:00 run sent, when it did: a lead that
    enters Nurture P2 later in the day gets its first email at the next day's 08:00."""
    early = enrol(owner=owner)
    late = RPHFactory(
        owner=owner, status=RPH.Status.NURTURE_P2, status_changed_at=run_at(2, hour=11)
    )
    sent_at = []
    for quarter in range(2 * 24 * 4):  # 2 and 3 March, every 15 minutes
        at = run_at(2, hour=0) + timedelta(minutes=15 * quarter)  # company time: UTC
        if nurture_send(at)["sent"]:
            sent_at.append(at)

    assert sent_at == [run_at(2), run_at(3)]
    assert SentStep.objects.get(enrollment__rph=early, step__order=1).at == run_at(2)
    assert SentStep.objects.get(enrollment__rph=late, step__order=1).at == run_at(3)


@pytest.mark.django_db
def test_steps_renumbered_midway_send_no_step_twice_and_stop_nobody(sequence, owner):
    rph = enrol(owner=owner)
    nurture_send(run_at(2))  # step 1 is out; the lead waits for step 2
    first, second = sequence.steps.order_by("order")[:2]
    first.order, second.order = 99, 1  # an administrator moves step 1 to the end
    first.save()
    second.save()

    runs = [nurture_send(run_at(day)) for day in range(3, 32)]

    keys = list(OutboxMessage.objects.values_list("key", flat=True))
    assert len(keys) == len(set(keys)) == 4  # each of the four templates once
    assert Enrollment.objects.get(rph=rph).status == Enrollment.Status.CLOSED
    assert sum(run["failed"] for run in runs) == 0
