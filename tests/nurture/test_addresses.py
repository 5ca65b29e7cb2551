"""A step whose address is suppressed, missing or not an address is not sent: the reason is
kept on the enrollment, which stops."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailsync.models import OutboxMessage, Suppression
from mailsync.suppression import suppress
from nurture.jobs import nurture_send
from nurture.models import Enrollment, SentStep
from tests.nurture.conftest import enrol, run_at


@pytest.mark.django_db
def test_a_suppressed_address_stops_the_enrollment(sequence):
    rph = enrol(email="Ana@Prospect.Example")
    other = enrol()
    suppress("ana@prospect.example", Suppression.Source.UNSUBSCRIBE, "Unsubscribed", run_at(1))

    counts = nurture_send(run_at(2))

    assert counts["sent"] == 1 and counts["skipped"] == 1
    stopped = Enrollment.objects.get(rph=rph)
    assert stopped.status == Enrollment.Status.STOPPED
    assert stopped.stop_reason == "Ana@Prospect.Example is suppressed: Unsubscribed"
    assert SentStep.objects.get(enrollment=stopped).skipped == stopped.stop_reason
    assert list(OutboxMessage.objects.values_list("to", flat=True)) == [[other.email]]
    assert nurture_send(run_at(10))["sent"] == 1  # the other lead's next step only


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("email", "reason"),
    [("", "no email address"), ("not-an-address", "“not-an-address” is not a valid email address")],
)
def test_a_missing_or_invalid_address_stops_the_enrollment(sequence, email, reason):
    rph = enrol(email=email)

    counts = nurture_send(run_at(2))

    assert counts["skipped"] == 1 and not OutboxMessage.objects.exists()
    enrollment = Enrollment.objects.get(rph=rph)
    assert (enrollment.status, enrollment.stop_reason) == (Enrollment.Status.STOPPED, reason)


@pytest.mark.django_db
def test_suppressed_addresses_are_looked_up_once_per_batch(sequence):
    for n in range(20):
        enrol(email=f"lead{n}@prospect.example")
    for n in range(0, 20, 2):
        suppress(f"lead{n}@prospect.example", Suppression.Source.MANUAL, "Asked", run_at(1))

    with CaptureQueriesContext(connection) as queries:
        counts = nurture_send(run_at(2))

    assert counts == {"sent": 10, "skipped": 10, "failed": 0, "closed": 0, "enrolled": 0}
    lookups = [q for q in queries if 'FROM "mailsync_suppression"' in q["sql"]]
    assert len(lookups) <= 2  # ours, and the outbox's own check as it queues the batch


@pytest.mark.django_db
def test_a_long_suppression_reason_stops_one_enrollment_not_the_batch(sequence):
    """A provider's bounce text can fill the 500 characters of a suppression's reason."""
    rph = enrol(email="gone@prospect.example")
    other = enrol()
    suppress(rph.email, Suppression.Source.BOUNCE, "5.1.1 " + "x" * 494, run_at(1))

    counts = nurture_send(run_at(2))

    assert counts["sent"] == 1 and counts["skipped"] == 1
    stopped = Enrollment.objects.get(rph=rph)
    assert stopped.status == Enrollment.Status.STOPPED and len(stopped.stop_reason) == 500
    assert list(OutboxMessage.objects.values_list("to", flat=True)) == [[other.email]]
