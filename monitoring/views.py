from django.db import DatabaseError
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from mailsync.models import OutboxMessage
from monitoring import deadman
from monitoring import health as checks


@require_GET
def health(request):
    """For load balancers and uptime checks: 200 when the database and the broker answer, Beat
    ticks and every job is scheduled; 503 naming what failed otherwise. It names no host,
    version or secret: what failed, never why."""
    now = timezone.now()
    broker = "ok" if checks.broker_answers() else "unreachable"
    try:
        schedules = deadman.schedules()
        beat = checks.beat_state([s for s in schedules if s.enabled], now)
        gave_up = OutboxMessage.objects.filter(status=OutboxMessage.Status.FAILED).count()
    except DatabaseError:
        failing = ["database", *(["broker"] if broker != "ok" else [])]
        body = {"status": "down", "failing": failing, "database": "unreachable", "broker": broker}
        return JsonResponse(body, status=503)
    disabled = sorted(s.job for s in schedules if s.disabled)
    failing = [
        name
        for name, failed in (("broker", broker != "ok"), ("beat", beat.failing), ("jobs", disabled))
        if failed
    ]
    return JsonResponse(
        {
            "status": "degraded" if failing else "ok",
            "failing": failing,
            "database": "ok",
            "broker": broker,
            "beat": beat.state,
            "beat_last_tick": beat.last_tick.isoformat() if beat.last_tick else None,
            "disabled_jobs": disabled,
            "undeliverable_emails": gave_up,
        },
        status=503 if failing else 200,
    )
