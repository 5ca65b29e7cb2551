from django.db import DatabaseError
from django.http import JsonResponse
from django.views.decorators.http import require_GET
from django_celery_beat.models import PeriodicTask

from crm import registry
from mailsync.models import OutboxMessage


@require_GET
def health(request):
    """For load balancers and uptime checks: 200 when the database answers and every job is
    scheduled, 503 otherwise. Names no secrets."""
    try:
        disabled = sorted(
            PeriodicTask.objects.filter(
                name__in=[j.name for j in registry.all_jobs()], enabled=False
            ).values_list("name", flat=True)
        )
        gave_up = OutboxMessage.objects.filter(status=OutboxMessage.Status.FAILED).count()
    except DatabaseError:
        return JsonResponse({"status": "down", "database": "unreachable"}, status=503)
    healthy = not disabled
    return JsonResponse(
        {
            "status": "ok" if healthy else "degraded",
            "database": "ok",
            "disabled_jobs": disabled,
            "undeliverable_emails": gave_up,
        },
        status=200 if healthy else 503,
    )
