"""Two runners at once (a manual run beside the scheduled one on two hosts, racing past the
engine's lock): each step of each lead is sent once, none is skipped."""

import pytest
from django.db import connection

from mailsync.models import OutboxMessage
from nurture import sending
from nurture.jobs import nurture_send
from nurture.models import Enrollment, SentStep
from tests.nurture.conftest import enrol, make_sequence, run_at
from tests.processes import at_once

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SKIP LOCKED row claims are PostgreSQL's"
)


@pytest.mark.django_db(transaction=True)
def test_two_runners_send_each_step_once(monkeypatch, owner):
    monkeypatch.setattr(sending, "BATCH", 7)  # many small batches, so the runners interleave
    make_sequence(waits=(0, 1, 1), final_wait=1)
    leads = [enrol(owner=owner) for _ in range(60)]

    totals = []
    for day in (2, 3, 4, 5):
        outcomes = at_once(nurture_send, run_at(day))
        assert len(outcomes) == 2
        totals.append(sum(o["sent"] for o in outcomes) + sum(o["closed"] for o in outcomes))

    assert totals == [60, 60, 60, 60]
    assert OutboxMessage.objects.count() == SentStep.objects.count() == 180
    keys = OutboxMessage.objects.values_list("key", flat=True)
    assert len(set(keys)) == 180
    assert Enrollment.objects.filter(status=Enrollment.Status.CLOSED).count() == len(leads)
