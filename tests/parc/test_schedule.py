"""The PARC run's day and time belong to administrators: a friendly page in the admin writes
the same crontab Beat reads, and Beat's own schedule then fires on the new day."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from crm.schedules import sync_schedules
from parc import schedule
from tests.factories import UserFactory

PAGE = reverse("admin:parc_schedule")


@pytest.mark.django_db
def test_an_administrator_moves_the_run_and_beat_fires_on_the_new_day(
    client, administrator, settings
):
    settings.TIME_ZONE = settings.CELERY_TIMEZONE = "Europe/Madrid"
    sync_schedules()
    client.force_login(administrator)
    assert 'value="1" selected' in client.get(PAGE).content.decode()  # Monday by default

    response = client.post(PAGE, {"day": "4", "time": "07:30"}, follow=True)

    assert "PARC now runs every Thursday at 07:30 (Europe/Madrid)." in response.content.decode()
    assert schedule.current() == ("4", time(7, 30))
    beat = PeriodicTask.objects.get(name="parc_generate").crontab.schedule
    madrid = ZoneInfo("Europe/Madrid")
    wednesday = datetime(2027, 1, 6, 12, 0, tzinfo=madrid)
    with time_machine.travel(datetime(2027, 1, 7, 7, 30, 30, tzinfo=madrid), tick=False):
        assert beat.is_due(wednesday)[0]  # Thursday 07:30
    with time_machine.travel(datetime(2027, 1, 11, 5, 0, 30, tzinfo=madrid), tick=False):
        assert not beat.is_due(datetime(2027, 1, 7, 7, 31, tzinfo=madrid))[0]  # not Monday


@pytest.mark.parametrize("role", ["rep", "manager"])
@pytest.mark.django_db
def test_nobody_else_may_open_it(client, role):
    client.force_login(UserFactory(username=f"{role}_staff", role=role, is_staff=True))

    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, {"day": "4", "time": "07:30"}).status_code == 403
    assert schedule.current() == ("1", time(5, 0))


@pytest.mark.django_db
def test_bad_input_is_refused_on_its_field(client, administrator):
    client.force_login(administrator)

    response = client.post(PAGE, {"day": "8", "time": "25:00"})

    assert set(response.context["form"].errors) == {"day", "time"}
    assert schedule.current() == ("1", time(5, 0))
