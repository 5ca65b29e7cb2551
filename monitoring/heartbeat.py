"""Beat's heartbeat: the time Beat last sent a task.

Beat's only work is sending due tasks, and the shortest schedule (`outbox_send`, every minute)
makes it send one at least that often. So in the Beat process (marked by `beat_init`, which
records the first beat), every task it publishes records the time. That is Beat's own
act, whether or not a worker runs the task, and needs nothing of django-celery-beat's internals:
`PeriodicTasks.last_update` only changes when an administrator edits a schedule.
"""

import logging
import time
from datetime import datetime

from celery.signals import after_task_publish, beat_init
from django.utils import timezone

from monitoring.models import Heartbeat

log = logging.getLogger(__name__)

BEAT = "beat"
# Tasks Beat sends together (one catch-up per job on start) need one write, not one each.
MIN_INTERVAL = 10.0

_beat = {"running": False, "written": 0.0}


def record(name: str, at: datetime) -> None:
    Heartbeat.objects.bulk_create(
        [Heartbeat(name=name, at=at)],
        update_conflicts=True,
        unique_fields=["name"],
        update_fields=["at"],
    )


def last(name: str) -> datetime | None:
    return Heartbeat.objects.filter(name=name).values_list("at", flat=True).first()


@beat_init.connect
def beat_started(sender, **kwargs) -> None:
    _beat["running"] = True
    _beat_alive()


@after_task_publish.connect
def beat_sent_a_task(sender=None, **kwargs) -> None:
    if _beat["running"] and time.monotonic() - _beat["written"] >= MIN_INTERVAL:
        _beat_alive()


def _beat_alive() -> None:
    try:
        record(BEAT, timezone.now())
    except Exception as exc:  # noqa: BLE001 - Beat goes on; /health will say it is stale
        log.warning("could not record Beat's heartbeat: %s", exc)
    else:
        _beat["written"] = time.monotonic()
