"""expired_jobs_alert: dispatches and tasks 3 h past due alert their owner, the owner's manager
and the designated list: once per overdue episode, one grouped email per recipient."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import DatabaseError

from crm import runner
from crm.models import Dispatch, User
from mailsync import outbox
from mailsync.models import OutboxMessage
from notifications.jobs import alert_overdue_jobs
from notifications.models import AlertSettings, Notification, OverdueAlert
from tests.factories import DispatchFactory, TaskFactory, UserFactory

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def ops(db):
    ops = UserFactory(username="olga_ops", email="olga@vigil.example")
    AlertSettings.current().recipients.add(ops)
    return ops


def emails():
    return {m.to[0]: m for m in OutboxMessage.objects.filter(source="expired_jobs_alert")}


@pytest.mark.django_db
def test_jobs_three_hours_overdue_alert_owner_manager_and_the_designated_list(rita, boss, ops):
    DispatchFactory(
        owner=rita,
        team=rita.team,
        title="Inspect Acme",
        due_at=NOW - timedelta(hours=3, minutes=10),
    )
    TaskFactory(owner=rita, title="Send quote", due_at=NOW - timedelta(hours=5))
    DispatchFactory(
        owner=rita, team=rita.team, title="Only 2 h late", due_at=NOW - timedelta(hours=2)
    )
    DispatchFactory(
        owner=rita,
        team=rita.team,
        title="Done",
        due_at=NOW - timedelta(hours=5),
        status=Dispatch.Status.DONE,
    )

    counts = alert_overdue_jobs(NOW)

    assert counts == {"overdue": 2, "recipients": 3, "emails": 3}
    mail = emails()
    assert set(mail) == {"rita@vigil.example", "boss@vigil.example", "olga@vigil.example"}
    body = mail["boss@vigil.example"].text_body
    assert "Inspect Acme" in body and "Send quote" in body and "Only 2 h" not in body
    assert "is 5 h overdue (owner Rita)" in body
    assert Notification.objects.filter(source="overdue", user=ops).count() == 2


@time_machine.travel(NOW + timedelta(hours=1), tick=False)
@pytest.mark.django_db
def test_the_run_30_minutes_later_repeats_nothing(rita, ops):
    DispatchFactory(owner=rita, team=rita.team, due_at=NOW - timedelta(hours=4))
    runner.run_job("expired_jobs_alert", NOW)

    again = runner.run_job("expired_jobs_alert", NOW + timedelta(minutes=30))

    assert again.counts == {"overdue": 0, "recipients": 0, "emails": 0}
    assert OutboxMessage.objects.count() == 3  # rita, her manager and olga, once each
    assert Notification.objects.count() == 3


@pytest.mark.django_db
def test_a_job_overdue_again_with_a_new_due_time_alerts_again(rita, ops):
    dispatch = DispatchFactory(owner=rita, team=rita.team, due_at=NOW - timedelta(hours=4))
    alert_overdue_jobs(NOW)

    Dispatch.objects.filter(pk=dispatch.pk).update(due_at=NOW + timedelta(hours=1))
    assert alert_overdue_jobs(NOW + timedelta(hours=2))["overdue"] == 0
    counts = alert_overdue_jobs(NOW + timedelta(hours=4, minutes=30))

    assert counts["overdue"] == 1
    assert Notification.objects.filter(user=ops).count() == 2


@pytest.mark.django_db
def test_the_threshold_is_configurable_and_old_jobs_do_not_flood_a_first_run(rita, ops):
    settings = AlertSettings.current()
    settings.threshold = timedelta(hours=1)
    settings.save()
    DispatchFactory(owner=rita, team=rita.team, title="90 min", due_at=NOW - timedelta(minutes=90))
    DispatchFactory(owner=rita, team=rita.team, title="Ancient", due_at=NOW - timedelta(days=30))

    alert_overdue_jobs(NOW)

    assert [n.title for n in Notification.objects.filter(user=rita)] == [
        "Dispatch “90 min” is 1 h overdue (owner Rita)"
    ]


@pytest.mark.django_db
def test_re_running_the_same_slot_queues_no_duplicate_email(rita, ops):
    DispatchFactory(owner=rita, team=rita.team, due_at=NOW - timedelta(hours=4))

    alert_overdue_jobs(NOW)
    alert_overdue_jobs(NOW)

    assert OutboxMessage.objects.count() == 3
    assert Notification.objects.count() == 3


@pytest.mark.django_db
def test_a_recipient_with_a_broken_address_fails_alone(rita, boss, ops, client):
    User.objects.filter(pk=boss.pk).update(email="boss at vigil")  # stored before validation
    DispatchFactory(owner=rita, team=rita.team, due_at=NOW - timedelta(hours=4))

    counts = alert_overdue_jobs(NOW)

    assert counts == {"overdue": 1, "recipients": 3, "emails": 3}
    assert {m.to[0] if m.to else "-": m.status for m in OutboxMessage.objects.all()} == {
        "rita@vigil.example": "queued",
        "olga@vigil.example": "queued",
        "-": "failed",
    }
    failed = OutboxMessage.objects.get(status="failed")
    assert failed.last_error == "no deliverable recipient: 'boss at vigil' is not an email address"
    assert client.get("/health").json()["undeliverable_emails"] == 1
    assert Notification.objects.filter(user=boss).count() == 1  # the dashboard still shows it


@pytest.mark.django_db
def test_a_failure_after_recording_the_episode_leaves_it_to_the_next_run(rita, ops, monkeypatch):
    DispatchFactory(owner=rita, team=rita.team, due_at=NOW - timedelta(hours=4))

    def outbox_down(emails, now):
        raise DatabaseError("outbox table unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(outbox, "queue", outbox_down)
        with pytest.raises(DatabaseError):
            alert_overdue_jobs(NOW)

    assert not OverdueAlert.objects.exists() and not Notification.objects.exists()
    assert alert_overdue_jobs(NOW + timedelta(minutes=30))["emails"] == 3
