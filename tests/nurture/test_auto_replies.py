"""Automatic replies and delivery reports are not replies: an out-of-office notice pauses a
lead's sequence, which resumes by itself; a permanent bounce of a sequence email suppresses the
address and stops the sequence; a delay is only noted. Only a person's reply stops it and makes
the lead "contacted". Mail goes through the real path: parse, store, inbound_email."""

import itertools
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import RPH
from mailsync import backlog
from mailsync.models import BacklogEmail, Mailbox, OutboxMessage, Suppression
from mailsync.parsing import parse
from mailsync.signals import inbound_email
from mailsync.suppression import DeliveryStatus, lift, suppress
from mailsync.sync import sync_mailbox
from notifications.models import Notification
from nurture.jobs import nurture_send
from nurture.models import Enrollment, SentStep
from nurture.services import record_delivery_reports
from tests.imapserver import dovecot, imap_user, oauth_provider  # noqa: F401 - fixtures
from tests.mailsync.factories import imap_mailbox
from tests.mailsync.test_classify import plain, sample
from tests.nurture.conftest import enrol, run_at

LENA = "lena.lead@prospect.example"
MARCO = "marco.wolff@globex.example"
# The Message-IDs the samples' replies and returned headers name: the sequence emails.
LENA_STEP_1 = "<177254000000.4242.1234567890123456789@vigil.localhost>"
MARCO_STEP_1 = "<177254000000.4242.9876543210987654321@vigil.localhost>"
OUT_OF_OFFICE_AT = datetime(2026, 3, 3, 14, 12, 43, tzinfo=UTC)  # gmail-vacation.eml
BOUNCED_AT = datetime(2026, 3, 3, 9, 2, 17, tzinfo=UTC)  # postfix-dsn.eml
SYNCED = run_at(4, hour=7)
UIDS = itertools.count(1)


@pytest.fixture
def mailbox(rep):
    return Mailbox.objects.create(
        owner=rep,
        provider=Mailbox.Provider.IMAP,
        auth=Mailbox.Auth.PASSWORD,
        address="rita@vigil.example",
        username="rita@vigil.example",
        imap_host="imap.vigil.example",
        status=Mailbox.Status.ACTIVE,
        created_at=run_at(1),
    )


def lead_sent_step_1(email: str, message_id: str, owner) -> RPH:
    """A lead enrolled on 1 March whose first sequence email went out on the 2nd, under the
    Message-ID the samples answer or return."""
    rph = enrol(owner=owner, email=email, name="Lena Lead", company="Prospect Media")
    nurture_send(run_at(2))
    key = SentStep.objects.get(enrollment__rph=rph).outbox_key
    OutboxMessage.objects.filter(key=key).update(message_id=message_id)
    return rph


@pytest.fixture
def lena(sequence, rep):
    return lead_sent_step_1(LENA, LENA_STEP_1, rep)


@pytest.fixture
def marco(sequence, rep):
    return lead_sent_step_1(MARCO, MARCO_STEP_1, rep)


def deliver(mailbox, *raws: bytes, at: datetime = SYNCED) -> None:
    """What a sync does with messages it fetched: parse, store, and tell inbound_email."""
    fetched = [backlog.Fetched(next(UIDS), raw) for raw in raws]
    backlog.store(mailbox, "inbox", 1, fetched, at)


def enrollment_of(rph: RPH) -> Enrollment:
    return Enrollment.objects.get(rph=rph)


def sent_days() -> list[int]:
    return sorted(SentStep.objects.values_list("at__day", flat=True))


# Automatic replies pause


@pytest.mark.django_db
def test_an_out_of_office_pauses_the_sequence_and_is_no_reply(lena, mailbox, settings):
    settings.VIGIL_NURTURE_AUTO_REPLY_PAUSE_DAYS = 7

    deliver(mailbox, sample("gmail-vacation.eml"))

    assert BacklogEmail.objects.get().kind == BacklogEmail.Kind.AUTO_REPLY
    enrollment = enrollment_of(lena)
    assert enrollment.status == Enrollment.Status.ACTIVE
    assert enrollment.paused_until == OUT_OF_OFFICE_AT + timedelta(days=7)
    assert enrollment.pause_reason == "automatic reply on 03 Mar 2026: Out of office until 16 March"
    lena.refresh_from_db()
    assert lena.status == RPH.Status.NURTURE_P2  # not "contacted"
    assert not Notification.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("days", "sent_on"), [(7, [2, 10, 14, 21]), (10, [2, 13, 17, 24])])
def test_the_sequence_resumes_by_itself_when_the_pause_ends(lena, mailbox, settings, days, sent_on):
    settings.VIGIL_NURTURE_AUTO_REPLY_PAUSE_DAYS = days
    deliver(mailbox, sample("gmail-vacation.eml"))

    for day in range(3, 32):
        nurture_send(run_at(day))

    # Step 2 was due on the 5th: it waits for the pause's last day; steps 3 and 4 keep their
    # waits (4 and 7 days) from there.
    assert sent_days() == sent_on
    assert enrollment_of(lena).status == Enrollment.Status.ACTIVE


@pytest.mark.django_db
@pytest.mark.parametrize("loop_header_only", [False, True])
def test_an_exchange_out_of_office_to_a_sequence_email_pauses_it(
    sequence, rep, mailbox, loop_header_only
):
    # The lead is written to at another address: the notice is matched by the email it answers.
    lead = lead_sent_step_1("m.wolff@globex.example", MARCO_STEP_1, rep)
    raw = sample("exchange-oof.eml")
    if loop_header_only:
        raw = raw.replace(b"Auto-Submitted: auto-generated\n", b"")

    deliver(mailbox, raw)

    enrollment = enrollment_of(lead)
    assert enrollment.status == Enrollment.Status.ACTIVE and enrollment.paused_until
    assert enrollment.pause_reason.endswith(": Automatic reply: Marco, a word about Globex Foods")


@pytest.mark.django_db
def test_only_a_persons_reply_stops_the_sequence(lena, mailbox):
    deliver(mailbox, sample("gmail-vacation.eml"))
    assert enrollment_of(lena).status == Enrollment.Status.ACTIVE

    deliver(mailbox, plain())

    assert enrollment_of(lena).status == Enrollment.Status.REPLIED
    lena.refresh_from_db()
    assert lena.status == RPH.Status.CONTACTED


@pytest.mark.django_db
def test_the_whole_chain_from_a_mailbox_on_the_server(lena, marco, rep, dovecot, imap_user):  # noqa: F811
    dovecot.append(imap_user.name, "INBOX", sample("gmail-vacation.eml"))
    dovecot.append(imap_user.name, "INBOX", sample("exchange-ndr.eml"))

    outcome = sync_mailbox(imap_mailbox(rep, dovecot, imap_user).pk)

    assert (outcome.status, outcome.stored) == ("synced", 2)
    assert enrollment_of(lena).paused_until == OUT_OF_OFFICE_AT + timedelta(days=7)
    assert enrollment_of(marco).status == Enrollment.Status.STOPPED
    assert list(Suppression.objects.values_list("address", flat=True)) == [MARCO]
    assert set(RPH.objects.values_list("status", flat=True)) == {RPH.Status.NURTURE_P2}


# Delivery reports


@pytest.mark.django_db
def test_a_permanent_bounce_suppresses_the_address_and_stops_the_sequence(lena, mailbox):
    deliver(mailbox, sample("postfix-dsn.eml"))

    diagnostic = (
        "550 5.1.1 <lena.lead@prospect.example>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )
    listed = Suppression.objects.get()
    assert (listed.address, listed.source) == (LENA, Suppression.Source.BOUNCE)
    assert listed.reason == f"bounced 5.1.1: {diagnostic}" and listed.created_at == BOUNCED_AT
    enrollment = enrollment_of(lena)
    assert enrollment.status == Enrollment.Status.STOPPED
    assert enrollment.stop_reason == f"{LENA} bounced 5.1.1: {diagnostic}"
    assert enrollment.stopped_at == BOUNCED_AT
    lena.refresh_from_db()
    assert lena.status == RPH.Status.NURTURE_P2
    for day in range(4, 32):
        nurture_send(run_at(day))
    assert sent_days() == [2]


@pytest.mark.django_db
def test_an_exchange_report_quoting_the_sequence_email_is_a_bounce_not_a_reply(marco, mailbox):
    # Exchange puts In-Reply-To on its report: as a reply, it stopped the sequence and made the
    # lead "contacted".
    deliver(mailbox, sample("exchange-ndr.eml"))

    enrollment = enrollment_of(marco)
    assert enrollment.status == Enrollment.Status.STOPPED
    assert enrollment.stop_reason.startswith(f"{MARCO} bounced 5.1.10: 550 5.1.10 RESOLVER.ADR")
    marco.refresh_from_db()
    assert marco.status == RPH.Status.NURTURE_P2
    assert Suppression.objects.get().address == MARCO


@pytest.mark.django_db
def test_a_delay_is_only_noted(lena, mailbox):
    deliver(mailbox, sample("delayed-dsn.eml"))

    enrollment = enrollment_of(lena)
    assert enrollment.status == Enrollment.Status.ACTIVE
    assert enrollment.delivery_note == (
        f"03 Mar 2026: delivery to {LENA} delayed 4.4.1 (connect to "
        "mx.prospect.example[198.51.100.25]:25: Connection timed out)"
    )
    assert not Suppression.objects.exists()
    nurture_send(run_at(5))
    assert sent_days() == [2, 5]  # on schedule


@pytest.mark.django_db
def test_a_report_on_an_email_we_did_not_send_changes_nothing(lena, mailbox):
    raw = sample("postfix-dsn.eml", (LENA_STEP_1.encode(), b"<someone-elses@vigil.localhost>"))

    deliver(mailbox, raw)

    assert not Suppression.objects.exists()
    enrollment = enrollment_of(lena)
    assert enrollment.status == Enrollment.Status.ACTIVE
    assert enrollment.delivery_note == ""  # its sender's words are not shown on the lead


@pytest.mark.django_db
def test_forged_reports_naming_a_quarter_million_addresses_cost_no_query(lena):
    """A sync batch of 500 forged reports of 1,000 recipients each: nothing to look up, so
    no query (one with 500,000 parameters would fail on SQLite, and with it the batch)."""
    forged = [
        DeliveryStatus(f"x{n}@nowhere.example", "failed", "5.1.1", "", run_at(3), "")
        for n in range(500_000)
    ]

    with CaptureQueriesContext(connection) as queries:
        assert record_delivery_reports(forged) == 0

    assert len(queries) == 0


@pytest.mark.django_db
def test_a_report_suppresses_only_the_addresses_our_email_went_to(lena, mailbox):
    another = (
        b"\nFinal-Recipient: rfc822; ceo@prospect.example\nAction: failed\nStatus: 5.1.1\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 User unknown\n"
    )
    headers_part = b"\n--4Z9gT81Qv2z9sWq.1772528537/mx1.vigil.example\nContent-Description: Un"
    raw = sample("postfix-dsn.eml", (headers_part, another + headers_part))

    deliver(mailbox, raw)

    assert list(Suppression.objects.values_list("address", flat=True)) == [LENA]


@pytest.mark.django_db
def test_a_lifted_address_stays_lifted_against_an_older_report(lena, marco, mailbox, administrator):
    for address, lifted_on in ((LENA, 2), (MARCO, 4)):  # both reports are of the 3rd
        suppress(address, Suppression.Source.MANUAL, "typo?", run_at(1))
        lift(Suppression.objects.filter(address=address), administrator, "fixed", run_at(lifted_on))

    deliver(mailbox, sample("postfix-dsn.eml"), sample("exchange-ndr.eml"), at=run_at(5))

    listed = Suppression.objects.get(address=LENA)
    assert listed.lifted_at is None and listed.source == Suppression.Source.BOUNCE
    assert listed.reason.startswith("bounced 5.1.1") and listed.created_at == BOUNCED_AT
    assert Suppression.objects.get(address=MARCO).lifted_at == run_at(4)


@pytest.mark.django_db
def test_syncing_the_same_mail_again_changes_nothing(lena, marco, mailbox):
    mail = [sample("gmail-vacation.eml"), sample("delayed-dsn.eml"), sample("exchange-ndr.eml")]
    deliver(mailbox, *mail)
    fields = ("status", "stop_reason", "paused_until", "pause_reason", "delivery_note")
    before = list(Enrollment.objects.order_by("pk").values(*fields))
    listed = list(Suppression.objects.values())

    deliver(mailbox, *mail, at=run_at(6))

    assert list(Enrollment.objects.order_by("pk").values(*fields)) == before
    assert list(Suppression.objects.values()) == listed
    assert [e["status"] for e in before] == [Enrollment.Status.ACTIVE, Enrollment.Status.STOPPED]
    assert before[0]["paused_until"] and before[0]["delivery_note"] and len(listed) == 1


# The lead page


@pytest.mark.django_db
def test_the_lead_page_shows_why_the_sequence_paused_or_stopped(lena, mailbox, rep, client):
    client.force_login(rep)
    deliver(mailbox, sample("gmail-vacation.eml"), sample("delayed-dsn.eml"))
    url = reverse("nurture:rph", args=[lena.pk])

    with time_machine.travel(run_at(5, hour=12), tick=False):
        paused = client.get(url).content.decode()
    with time_machine.travel(run_at(11, hour=12), tick=False):
        resumed = client.get(url).content.decode()
    deliver(mailbox, sample("postfix-dsn.eml"))
    stopped = client.get(url).content.decode()

    assert 'id="paused"' in paused and "Tue 10 Mar 2026" in paused
    assert "automatic reply on 03 Mar 2026: Out of office until 16 March" in paused
    assert "delayed 4.4.1" in paused and 'id="delivery-note"' in paused
    assert 'id="paused"' not in resumed
    assert f"{LENA} bounced 5.1.1: 550 5.1.1" in stopped
    assert 'id="suppressed"' in stopped


# Cost


def rows(raws: list[bytes]) -> list[SimpleNamespace]:
    """inbound_email's records of these messages, as backlog.store makes them."""
    return [SimpleNamespace(pk=0, created_at=run_at(4), **asdict(parse(raw))) for raw in raws]


@pytest.mark.django_db
def test_a_batch_of_500_costs_a_bounded_number_of_queries(
    sequence, rep, django_assert_max_num_queries
):
    leads = [enrol(owner=rep, email=f"lead{n}@prospect.example") for n in range(500)]
    nurture_send(run_at(2))
    sent = {
        to[0]: message_id
        for to, message_id in OutboxMessage.objects.values_list("to", "message_id")
    }
    out_of_office, bounce = sample("gmail-vacation.eml"), sample("postfix-dsn.eml")
    mail = [
        (out_of_office if n % 2 else bounce)
        .replace(LENA.encode(), rph.email.encode())
        .replace(LENA_STEP_1.encode(), sent[rph.email].encode())
        for n, rph in enumerate(leads)
    ]

    with django_assert_max_num_queries(25):
        inbound_email.send(sender=BacklogEmail, emails=rows(mail))

    assert Suppression.objects.count() == 250
    statuses = list(Enrollment.objects.values_list("status", "paused_until"))
    assert sum(1 for status, _ in statuses if status == Enrollment.Status.STOPPED) == 250
    assert sum(1 for status, until in statuses if status == "active" and until) == 250
