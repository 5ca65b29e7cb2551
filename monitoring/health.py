"""The checks behind /health: the database, the broker, and Beat's last tick."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from kombu import Connection

from monitoring import deadman, heartbeat

BROKER_TIMEOUT = 2  # seconds; a load balancer's check must not hang on a broker that hangs


def broker_answers() -> bool:
    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            connect_timeout=BROKER_TIMEOUT,
            transport_options=getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}),
        ) as connection:
            connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT
            )
    except Exception:  # noqa: BLE001 - whatever the transport raises, the broker did not answer
        return False
    return True


@dataclass(frozen=True)
class BeatState:
    state: str  # "ok", "stale", "never ticked" or "idle" (nothing scheduled)
    last_tick: datetime | None

    @property
    def failing(self) -> bool:
        return self.state in ("stale", "never ticked")


def beat_state(enabled: list[deadman.Schedule], now: datetime) -> BeatState:
    """Beat is stale when it has not ticked for twice its shortest schedule."""
    last = heartbeat.last(heartbeat.BEAT)
    if not enabled:
        return BeatState("idle", last)
    shortest = min(deadman.period(s.expression, s.tz, now) for s in enabled)
    if last is None:
        return BeatState("never ticked", None)
    return BeatState("ok" if now - last <= 2 * shortest else "stale", last)
