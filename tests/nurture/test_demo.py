"""seed_demo: a four-step P2 sequence with leads at different steps, closed, suppressed and
replied."""

from datetime import UTC, datetime
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from crm.models import RPH
from nurture.models import Enrollment, Sequence


# Whatever the hour it is seeded at: at 07:07 (UTC) the last lead entered P2 yesterday after
# the daily 08:00 slot, and the month's last run, as of that slot, never reached it.
@pytest.mark.parametrize("hour", [7, 8, 20])
@pytest.mark.django_db
def test_the_demo_has_leads_at_every_stage(hour, settings):
    settings.TIME_ZONE = "UTC"
    with time_machine.travel(datetime(2026, 12, 7, hour, 7, tzinfo=UTC), tick=False):
        call_command("seed_demo", "--force", stdout=StringIO())
        call_command("seed_demo", "--force", stdout=StringIO())

    assert Sequence.objects.get(active=True).steps.count() == 4
    statuses = set(Enrollment.objects.values_list("status", flat=True))
    assert statuses == {"active", "closed", "replied", "stopped"}
    steps = Enrollment.objects.filter(status="active").values_list("step__order", flat=True)
    assert len(set(steps)) >= 3
    assert Enrollment.objects.filter(stop_reason__contains="is suppressed").count() == 1
    leads = RPH.objects.filter(nurture_enrollments__isnull=False).distinct()
    assert leads.exclude(country="").exists() and leads.exclude(time_zone="").exists()
