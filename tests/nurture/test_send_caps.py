"""Hourly caps per recipient domain and per sending address spread a large batch over the
hours: a step over a cap is not sent, not lost, and not tried again before the next hour; no
step goes twice. Two runners at once share one count (PostgreSQL)."""

from collections import Counter
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection

from mailsync.models import OutboxMessage
from nurture import sending
from nurture.caps import domain_of, sender
from nurture.jobs import nurture_send
from nurture.models import Enrollment, SendCount, SendSettings, SentStep
from tests.nurture.conftest import enrol, make_sequence, run_at
from tests.processes import at_once


def caps(domain=0, mailbox=0, **window) -> SendSettings:
    return SendSettings.objects.create(
        domain_hourly_cap=domain, mailbox_hourly_cap=mailbox, **window
    )


def leads_at(domain: str, count: int, owner) -> None:
    for n in range(count):
        enrol(owner=owner, email=f"lead{n}@{domain}")


def per_domain() -> Counter:
    return Counter(domain_of(to[0]) for to in OutboxMessage.objects.values_list("to", flat=True))


@pytest.mark.django_db
def test_a_domain_cap_spreads_its_leads_over_the_hours_and_loses_none(sequence, owner):
    caps(domain=2)
    leads_at("big.example", 5, owner)
    leads_at("small.example", 1, owner)

    first = nurture_send(run_at(2))
    assert first["sent"] == 3 and first["held"] == 3
    assert per_domain() == {"big.example": 2, "small.example": 1}
    # Held until the next hour: the quarter-hour runs of this one do not even try.
    assert nurture_send(run_at(2) + timedelta(minutes=15))["sent"] == 0
    assert Enrollment.objects.filter(send_after=run_at(2, hour=9)).count() == 3

    assert [nurture_send(run_at(2, hour=h))["sent"] for h in (9, 10, 11)] == [2, 1, 0]
    assert per_domain() == {"big.example": 5, "small.example": 1}
    assert SentStep.objects.count() == OutboxMessage.objects.count() == 6
    counted = dict(SendCount.objects.values_list("hour", "sent").filter(name="big.example"))
    assert counted == {run_at(2): 2, run_at(2, hour=9): 2, run_at(2, hour=10): 1}


@pytest.mark.django_db
def test_a_batch_a_cap_holds_whole_does_not_stop_the_run(monkeypatch, sequence, owner):
    monkeypatch.setattr(sending, "BATCH", 2)
    caps(domain=1)
    leads_at("big.example", 6, owner)  # enrolled first: the first batches are all theirs
    leads_at("small.example", 1, owner)

    first = nurture_send(run_at(2))

    assert per_domain() == {"big.example": 1, "small.example": 1}
    assert first["held"] == 5


@pytest.mark.django_db
def test_a_mailbox_cap_counts_every_domain(sequence, owner):
    caps(domain=1, mailbox=3)
    leads_at("a.example", 3, owner)
    leads_at("b.example", 3, owner)

    assert nurture_send(run_at(2))["sent"] == 2  # one a domain: the third unused
    mailbox = SendCount.objects.get(kind=SendCount.Kind.MAILBOX, hour=run_at(2))
    assert (mailbox.name, mailbox.sent) == (sender(), 2)
    assert [nurture_send(run_at(2, hour=h))["sent"] for h in (9, 10, 11)] == [2, 2, 0]
    assert SentStep.objects.count() == 6


@pytest.mark.django_db
def test_a_domain_grant_the_mailbox_refuses_is_given_back(sequence, owner):
    caps(domain=3, mailbox=2)
    leads_at("a.example", 3, owner)

    assert nurture_send(run_at(2))["sent"] == 2

    domain = SendCount.objects.get(kind=SendCount.Kind.DOMAIN, hour=run_at(2))
    assert (domain.name, domain.sent) == ("a.example", 2)


@pytest.mark.django_db
def test_without_a_window_a_step_held_at_night_waits_for_eight(sequence, owner):
    caps(mailbox=1)
    leads_at("a.example", 2, owner)

    assert nurture_send(run_at(2, hour=23))["sent"] == 1

    held = Enrollment.objects.filter(sent=None).get()
    assert held.send_after == run_at(3)  # not midnight: the company's 08:00
    assert nurture_send(run_at(3, hour=0))["sent"] == 0
    assert nurture_send(run_at(3))["sent"] == 1


@pytest.mark.django_db
def test_with_a_window_a_step_held_past_its_end_goes_in_the_next_window(sequence, owner):
    caps(mailbox=1, window=True, window_days="1234567", window_starts=time(9), window_ends=time(10))
    leads_at("a.example", 2, owner)  # the company's zone (UTC here): 09:00-10:00 UTC

    assert nurture_send(run_at(2, hour=9))["sent"] == 1

    held = Enrollment.objects.filter(sent=None).get()
    assert (held.send_after, held.send_until) == (run_at(3, hour=9), run_at(3, hour=10))
    assert nurture_send(run_at(2, hour=9) + timedelta(minutes=30))["sent"] == 0
    assert nurture_send(run_at(3, hour=9))["sent"] == 1


@pytest.mark.django_db
def test_counts_of_past_days_are_forgotten(sequence, owner):
    caps(domain=5)
    SendCount.objects.create(kind="domain", name="old.example", hour=run_at(1) - timedelta(2))
    leads_at("a.example", 1, owner)

    nurture_send(run_at(2))

    assert set(SendCount.objects.values_list("name", flat=True)) == {"a.example"}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED row claims")
@pytest.mark.django_db(transaction=True)
def test_two_runners_together_keep_to_the_caps_and_send_each_step_once(monkeypatch, owner):
    monkeypatch.setattr(sending, "BATCH", 7)  # many small batches, so the runners interleave
    make_sequence(waits=(0,), final_wait=30)
    caps(domain=4, mailbox=10)
    for domain in ("a.example", "b.example", "c.example", "d.example"):
        leads_at(domain, 9, owner)

    hours = []
    for hour in range(8, 16):
        outcomes = at_once(nurture_send, run_at(2, hour=hour))
        assert len(outcomes) == 2
        hours.append(sum(o["sent"] for o in outcomes))

    # Ten an hour (the sending address) until the domains left pass four an hour each.
    assert hours[:3] == [10, 10, 10] and all(sent <= 10 for sent in hours)
    assert sum(hours) == 36 and hours[-1] == 0
    keys = list(OutboxMessage.objects.values_list("key", flat=True))
    assert len(keys) == len(set(keys)) == SentStep.objects.count() == 36
    by_hour = Counter(
        (created.astimezone(UTC).hour, domain_of(to[0]))
        for created, to in OutboxMessage.objects.values_list("created_at", "to")
    )
    assert max(by_hour.values()) <= 4
    assert all(
        sent <= 10
        for sent in SendCount.objects.filter(kind="mailbox").values_list("sent", flat=True)
    )


def test_the_caps_hour_is_utc():
    from nurture.caps import hour_of

    assert hour_of(datetime(2026, 3, 2, 8, 59, tzinfo=UTC)) == run_at(2)
