import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask


@pytest.mark.django_db
def test_health_is_ok_when_the_database_answers_and_every_job_is_scheduled(client):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.django_db
def test_health_is_degraded_when_a_job_was_disabled(client):
    call_command("sync_schedules", verbosity=0)
    PeriodicTask.objects.filter(name="outbox_send").update(enabled=False)

    response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["disabled_jobs"] == ["outbox_send"]
