"""No part of the CRM sends to a suppressed address: the outbox checks the list when it sends,
so email queued before the address was suppressed does not go either. Tested through every
path that queues email today, delivered to a real SMTP server."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from crm import runner
from crm.schedules import sync_schedules
from mailsync import outbox, suppression
from mailsync.models import OutboxMessage, Suppression
from notifications.models import AlertSettings
from tests.factories import AccountFactory, DispatchFactory, TeamFactory, UserFactory
from tests.mailsync.factories import SuppressionFactory
from tests.parc.conftest import AgreementFactory

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def bounce(address):
    return SuppressionFactory(address=address, reason="Postmark reported bounced: no such user")


def email(key="hello:1", to=("rita@client.example",), **extra):
    return outbox.Email(key=key, to=list(to), subject="Hi", text_body="Hi", source="test", **extra)


def send(at):
    return runner.run_job("outbox_send", at, force=True)


@pytest.mark.django_db
def test_a_message_queued_before_the_address_was_suppressed_is_not_sent(smtp_server):
    outbox.queue([email()], T0)
    bounce("rita@client.example")

    run = send(T0 + timedelta(minutes=1))

    assert run.counts == {"sent": 0, "retrying": 0, "failed": 0, "suppressed": 1}
    assert smtp_server.received == []
    row = OutboxMessage.objects.get()
    assert row.status == OutboxMessage.Status.SUPPRESSED
    assert "every recipient is suppressed" in row.last_error
    assert "no such user" in row.last_error
    assert row.dropped == {
        "rita@client.example": "suppressed (Postmark reported bounced: no such user)"
    }
    assert row.to == []


@pytest.mark.django_db
def test_the_other_recipients_still_get_it(smtp_server):
    outbox.queue(
        [
            email(
                to=["Rita@Client.example ", "tom@client.example"],
                cc=["boss@client.example"],
                bcc=["audit@client.example"],
            )
        ],
        T0,
    )
    bounce("rita@client.example")
    bounce("audit@client.example")

    run = send(T0)

    assert run.counts["sent"] == 1
    assert smtp_server.envelopes == [["boss@client.example", "tom@client.example"]]
    row = OutboxMessage.objects.get()
    assert (row.status, row.to, row.cc, row.bcc) == (
        "sent",
        ["tom@client.example"],
        ["boss@client.example"],
        [],
    )
    assert set(row.dropped) == {"Rita@Client.example ", "audit@client.example"}


@pytest.mark.django_db
def test_an_address_already_suppressed_is_withheld_when_queued(smtp_server):
    bounce("rita@client.example")

    assert outbox.queue([email()], T0) == 1

    row = OutboxMessage.objects.get()
    assert row.status == OutboxMessage.Status.SUPPRESSED and "no such user" in row.last_error
    assert send(T0).counts["suppressed"] == 0  # never claimed
    assert smtp_server.received == []


@pytest.mark.django_db
def test_a_lifted_address_gets_mail_again(smtp_server, administrator):
    bounce("rita@client.example")
    suppression.lift(Suppression.objects.all(), administrator, "mailbox fixed", T0)
    outbox.queue([email()], T0)

    send(T0)

    assert len(smtp_server.received) == 1


@time_machine.travel(T0, tick=False)
@pytest.mark.django_db
def test_expired_jobs_alert_emails_skip_a_suppressed_manager(smtp_server):
    north = TeamFactory(name="North")
    boss = UserFactory(username="boss", role="manager", team=north, email="boss@vigil.example")
    rita = UserFactory(username="rita", team=north, manager=boss, email="rita@vigil.example")
    ops = UserFactory(username="olga_ops", email="olga@vigil.example")
    AlertSettings.current().recipients.add(ops)
    DispatchFactory(owner=rita, team=north, due_at=T0 - timedelta(hours=4))
    runner.run_job("expired_jobs_alert", T0)
    bounce("boss@vigil.example")

    run = send(T0)

    assert run.counts == {"sent": 2, "retrying": 0, "failed": 0, "suppressed": 1}
    assert sorted(e[0] for e in smtp_server.envelopes) == [
        "olga@vigil.example",
        "rita@vigil.example",
    ]
    assert OutboxMessage.objects.get(status="suppressed").dropped.keys() == {"boss@vigil.example"}


@time_machine.travel(T0 + timedelta(hours=3), tick=False)  # the receiver queues at "now"
@pytest.mark.django_db
def test_the_job_disabled_email_skips_a_suppressed_administrator(
    smtp_server, make_job, administrator, settings
):
    UserFactory(username="alan_admin", role="admin", email="alan@vigil.example")
    settings.VIGIL_JOB_MAX_FAILURES = 3

    def broken(as_of, *, dry_run=False):
        raise RuntimeError("ledger is on fire")

    make_job("test_broken", broken, schedule="0 * * * *")
    sync_schedules()
    for hour in range(3):
        runner.run_scheduled("test_broken", T0 + timedelta(hours=hour))
    bounce("ada@vigil.example")

    send(T0 + timedelta(hours=3))

    row = OutboxMessage.objects.get(source="monitoring")
    assert (row.status, row.to) == ("sent", ["alan@vigil.example"])
    assert smtp_server.envelopes == [["alan@vigil.example"]]
    assert "ada@vigil.example" in row.dropped


@pytest.mark.django_db
def test_the_parc_summary_is_not_sent_to_a_suppressed_account_manager(smtp_server):
    maria = UserFactory(username="maria_manager", role="manager", email="maria@vigil.example")
    mateo = UserFactory(username="mateo_manager", role="manager", email="mateo@vigil.example")
    AgreementFactory(account=AccountFactory(name="Acme", account_manager=maria))
    AgreementFactory(
        account=AccountFactory(name="Cobalt", account_manager=mateo), first_visit=date(2027, 1, 5)
    )
    monday = datetime(2027, 1, 4, 5, 0, tzinfo=UTC)
    runner.run_job("parc_generate", monday, force=True)
    bounce("maria@vigil.example")

    run = send(monday)

    assert run.counts["sent"] == 1 and run.counts["suppressed"] == 1
    assert smtp_server.envelopes == [["mateo@vigil.example"]]
    assert OutboxMessage.objects.get(to=[]).status == "suppressed"
