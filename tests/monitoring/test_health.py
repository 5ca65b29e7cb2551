"""/health: the database, the broker, Beat's last tick and the jobs' schedules, each named when
it fails, and nothing about hosts, versions or secrets."""

import json
import socket
import sys
import time
from datetime import timedelta

import django
import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import OperationalError, connection
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from monitoring import heartbeat
from monitoring.models import Heartbeat
from tests.processes import celery

# subprocess_env hands a child process this test's PostgreSQL database.
needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the child process reaches PostgreSQL only"
)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def beat_ticked_ago(delta: timedelta) -> None:
    heartbeat.record(heartbeat.BEAT, timezone.now() - delta)


@pytest.fixture
def synced(db):
    call_command("sync_schedules", verbosity=0)


@pytest.mark.django_db
def test_health_is_ok_when_the_database_and_broker_answer_beat_ticks_and_jobs_are_scheduled(
    client, synced, beat_ticked
):
    response = client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert (body["database"], body["broker"], body["beat"]) == ("ok", "ok", "ok")


@pytest.mark.django_db
def test_health_is_degraded_when_a_job_was_disabled(client, synced, beat_ticked):
    PeriodicTask.objects.filter(name="outbox_send").update(enabled=False)

    response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["failing"] == ["jobs"]
    assert response.json()["disabled_jobs"] == ["outbox_send"]


@pytest.mark.django_db
def test_a_broker_that_does_not_answer_is_named(client, synced, beat_ticked, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"

    started = time.monotonic()
    response = client.get("/health")

    assert time.monotonic() - started < 5
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]
    assert response.json()["broker"] == "unreachable"


@pytest.mark.django_db
def test_a_database_that_does_not_answer_is_named(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"

    def refuse(execute, sql, params, many, context):
        raise OperationalError("connection to server at 10.0.0.7 failed")

    with connection.execute_wrapper(refuse):
        response = client.get("/health")

    assert response.status_code == 503
    assert response.json() == {
        "status": "down",
        "failing": ["database", "broker"],
        "database": "unreachable",
        "broker": "unreachable",
    }
    assert "10.0.0.7" not in response.content.decode()


@pytest.mark.django_db
def test_beat_that_never_ticked_is_named(client, synced):
    response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["failing"] == ["beat"]
    assert response.json()["beat"] == "never ticked"


@pytest.mark.django_db
def test_beat_is_stale_after_twice_its_shortest_schedule(client, synced):
    # outbox_send runs every minute: Beat sends a task at least that often.
    beat_ticked_ago(timedelta(seconds=110))
    assert client.get("/health").json()["beat"] == "ok"

    beat_ticked_ago(timedelta(seconds=130))
    response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["beat"] == "stale"
    assert response.json()["failing"] == ["beat"]


@pytest.mark.django_db
def test_beat_staleness_follows_the_schedules_administrators_set(client, synced):
    every_five = CrontabSchedule.objects.create(minute="*/5", timezone="UTC")
    PeriodicTask.objects.filter(name="outbox_send").update(crontab=every_five)
    beat_ticked_ago(timedelta(minutes=9))
    assert client.get("/health").json()["beat"] == "ok"

    beat_ticked_ago(timedelta(minutes=11))
    assert client.get("/health").json()["beat"] == "stale"


@pytest.mark.django_db
def test_health_names_no_host_version_or_secret(client, synced, settings):
    settings.CELERY_BROKER_URL = f"redis://:broker-pw-123@127.0.0.1:{closed_port()}/0"
    beat_ticked_ago(timedelta(hours=1))
    PeriodicTask.objects.filter(name="outbox_send").update(enabled=False)

    text = client.get("/health").content.decode()

    db = connection.settings_dict
    for revealing in (
        socket.gethostname(),
        "127.0.0.1",
        "broker-pw-123",
        "redis",
        db["NAME"],
        django.get_version(),
        sys.version.split()[0],
        django_settings.SECRET_KEY,
    ):
        assert revealing not in text
    assert set(json.loads(text)["failing"]) == {"broker", "beat", "jobs"}


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_running_beat_records_its_tick(client, subprocess_env, tmp_path):
    call_command("sync_schedules", verbosity=0)
    # A broker of folders of its own: the tasks this Beat sends go nowhere else.
    env = {**subprocess_env, "CELERY_BROKER_URL": "filesystem://", "VIGIL_VAR_DIR": str(tmp_path)}
    schedule = f"--schedule={tmp_path}/celerybeat-schedule"
    with celery(env, "beat", "--loglevel=INFO", schedule) as beat:
        deadline = time.monotonic() + 60
        while not Heartbeat.objects.filter(name=heartbeat.BEAT).exists():
            assert time.monotonic() < deadline, f"Beat recorded no tick within 60 s: {beat.lines}"
            beat.rest(0.2)

    tick = heartbeat.last(heartbeat.BEAT)
    assert timezone.now() - tick < timedelta(minutes=1)
    assert client.get("/health").json()["beat"] == "ok"
