"""Beat and a real Celery worker, on both deployments: Redis + PostgreSQL, and the embedded
default (filesystem broker + SQLite) that `make run` uses."""

import os
import sqlite3

import pytest
import redis

from crm.models import JobRun
from mailsync import outbox
from mailsync.models import OutboxMessage
from tests.processes import celery_worker_with_beat, manage

REDIS_TEST_DB = "redis://127.0.0.1:6379/14"


@pytest.mark.django_db(transaction=True)
def test_beat_on_redis_triggers_a_scheduled_job_that_a_worker_runs(subprocess_env, tmp_path):
    redis.Redis.from_url(REDIS_TEST_DB).flushdb()
    from django.utils import timezone

    outbox.queue(
        [
            outbox.Email(
                key="beat-test",
                to=["ops@client.example"],
                subject="Hi",
                text_body="x",
                source="test",
            )
        ],
        timezone.now(),
    )
    env = {**subprocess_env, "CELERY_BROKER_URL": REDIS_TEST_DB}

    runs = JobRun.objects.filter(job="outbox_send")
    with celery_worker_with_beat(env, tmp_path) as output:
        # Beat's start-up catch-up takes the current minute; its every-minute tick then
        # sends the next slot. Each finished task is a chance to look at the ledger.
        while not runs.filter(trigger="schedule").exists():
            output.wait_for(r"Task crm\.run_scheduled_job\[.*\] succeeded", timeout=130)

    assert any(
        "Sending due task outbox_send (crm.run_scheduled_job)" in line for line in output.lines
    )
    assert set(runs.values_list("status", flat=True)) == {"succeeded"}
    assert OutboxMessage.objects.get(key="beat-test").status == "sent"


def test_the_embedded_default_runs_beat_and_worker_on_sqlite_and_files(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL") and not k.startswith("PYTEST")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="crm.settings", VIGIL_VAR_DIR=str(tmp_path), PYTHONUNBUFFERED="1"
    )
    assert manage("migrate", "--noinput", env=env).returncode == 0
    # Queued two minutes ago, so it is due at the slot Beat's start-up catch-up runs for.
    queued = manage(
        "shell",
        "-c",
        "from datetime import timedelta; from django.utils import timezone;"
        "from mailsync import outbox; outbox.queue([outbox.Email(key='k',"
        " to=['a@client.example'], subject='Embedded', text_body='x', source='test')],"
        " timezone.now() - timedelta(minutes=2))",
        env=env,
    )
    assert queued.returncode == 0, queued.stderr

    def runs():
        with sqlite3.connect(tmp_path / "vigil.sqlite3") as db:
            return db.execute("SELECT job, trigger, status FROM crm_jobrun").fetchall()

    with celery_worker_with_beat(env, tmp_path) as output:
        # Beat's start-up catch-up queues every job; look at the ledger after each one.
        while ("outbox_send", "catchup", "succeeded") not in runs():
            output.wait_for(r"Task crm\.run_scheduled_job\[.*\] succeeded", timeout=90)

    assert {status for _, _, status in runs()} == {"succeeded"}
    [eml] = (tmp_path / "mail").glob("*.eml")
    assert b"Subject: Embedded" in eml.read_bytes()
