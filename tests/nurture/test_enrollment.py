"""A lead entering Nurture P2 is enrolled once, whichever way its status changed: the admin,
a bulk QuerySet.update, code. Leaving the status stops the enrollment; coming back starts a
new one."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from crm.models import RPH
from nurture.jobs import nurture_send
from nurture.models import Enrollment, Sequence
from tests.nurture.conftest import ENROLLED, RPHFactory, enrol, make_sequence, run_at


@pytest.mark.django_db
def test_created_in_nurture_p2_by_code(sequence):
    rph = enrol()

    enrollment = Enrollment.objects.get(rph=rph)
    assert enrollment.sequence == sequence and enrollment.status == Enrollment.Status.ACTIVE
    assert enrollment.step == sequence.steps.order_by("order").first()
    assert enrollment.enrolled_at == ENROLLED and enrollment.next_due_at == ENROLLED


@pytest.mark.django_db
def test_a_save_from_code_counts_from_the_status_change(sequence):
    rph = RPHFactory()
    rph.status, rph.status_changed_at = RPH.Status.NURTURE_P2, ENROLLED + timedelta(days=2)
    rph.save()
    rph.save()  # saving again enrols nothing more

    enrollment = Enrollment.objects.get(rph=rph)
    assert enrollment.enrolled_at == ENROLLED + timedelta(days=2)


@pytest.mark.django_db
def test_a_bulk_update_enrols_every_lead_once(sequence):
    leads = [RPHFactory() for _ in range(5)]
    stamped = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)

    RPH.objects.filter(pk__in=[r.pk for r in leads[:3]]).update(
        status=RPH.Status.NURTURE_P2, status_changed_at=stamped
    )
    RPH.objects.filter(pk__in=[r.pk for r in leads[3:]]).update(status=RPH.Status.NURTURE_P2)
    RPH.objects.update(status=RPH.Status.NURTURE_P2)  # already there: nothing new

    assert Enrollment.objects.count() == 5
    dates = Enrollment.objects.order_by("rph_id").values_list("enrolled_at", flat=True)
    assert list(dates)[:3] == [stamped] * 3
    # Not stamped by the writer: the database's clock.
    assert all(abs(d - timezone.now()) < timedelta(minutes=5) for d in list(dates)[3:])


@pytest.mark.django_db
def test_saving_in_the_admin_enrols(sequence, administrator, client):
    rph = RPHFactory()
    client.force_login(administrator)
    form = {
        "name": rph.name,
        "company": rph.company,
        "email": rph.email,
        "owner": rph.owner_id,
        "status": RPH.Status.NURTURE_P2,
        "status_changed_at_0": "2026-03-05",
        "status_changed_at_1": "09:30:00",
    }

    response = client.post(f"/admin/crm/rph/{rph.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    enrollment = Enrollment.objects.get(rph=rph)
    assert enrollment.enrolled_at == datetime(2026, 3, 5, 9, 30, tzinfo=UTC)


@pytest.mark.django_db
def test_leaving_nurture_p2_stops_and_coming_back_starts_anew(sequence):
    rph = enrol()
    RPH.objects.filter(pk=rph.pk).update(status=RPH.Status.CONTACTED)

    stopped = Enrollment.objects.get(rph=rph)
    assert stopped.status == Enrollment.Status.STOPPED
    assert stopped.stop_reason == "Left Nurture P2 (status now contacted)"
    assert stopped.next_due_at is None

    RPH.objects.filter(pk=rph.pk).update(status=RPH.Status.NURTURE_P2)
    assert Enrollment.objects.filter(rph=rph).count() == 2
    assert Enrollment.objects.filter(rph=rph, status=Enrollment.Status.ACTIVE).count() == 1


@pytest.mark.django_db
def test_with_no_active_sequence_the_job_enrols_the_lead_later(owner):
    rph = enrol(owner=owner)
    assert not Enrollment.objects.exists()
    sequence = make_sequence(waits=(1, 2))

    counts = nurture_send(run_at(2))

    enrollment = Enrollment.objects.get(rph=rph)
    assert counts["enrolled"] == 1 and counts["sent"] == 0
    assert enrollment.sequence == sequence and enrollment.enrolled_at == run_at(2)
    assert enrollment.next_due_at == run_at(3)
    assert nurture_send(run_at(2))["enrolled"] == 0
    assert nurture_send(run_at(3))["sent"] == 1


@pytest.mark.django_db
def test_a_lead_stopped_in_the_active_sequence_is_not_enrolled_again(sequence):
    rph = enrol(email="")
    nurture_send(run_at(2))  # no address: stopped, still in Nurture P2

    counts = nurture_send(run_at(3))

    assert counts["enrolled"] == 0
    assert Enrollment.objects.get(rph=rph).status == Enrollment.Status.STOPPED


@pytest.mark.django_db
def test_one_active_sequence_at_a_time(sequence):
    from django.core.exceptions import ValidationError

    other = Sequence(name="Another", active=True)
    with pytest.raises(ValidationError, match="Another sequence is active"):
        other.full_clean()


@pytest.mark.django_db
def test_the_trigger_is_back_after_a_migrate_rebuilt_the_table(sequence):
    """SQLite drops a table's triggers when a migration rebuilds it; post_migrate puts them
    back (on PostgreSQL, install is simply idempotent)."""
    from django.core.management.sql import emit_post_migrate_signal

    from nurture import triggers

    triggers.uninstall(connection)
    emit_post_migrate_signal(0, False, connection.alias)  # what every migrate ends with
    triggers.install(connection)  # idempotent

    assert Enrollment.objects.filter(rph=enrol()).count() == 1
