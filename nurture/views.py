"""The RPH lead page with its nurture sequence, the reply button, and a run's closures."""

from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from crm.models import RPH
from crm.visibility import may_change, mine, visible_to
from mailsync.suppression import suppressed
from nurture import sending, services
from nurture.models import Enrollment


@login_required
@require_GET
def rph_detail(request, pk: int):
    rphs = visible_to(request.user, RPH.objects.select_related("owner", "contact"))
    rph = get_object_or_404(rphs, pk=pk)
    address = sending.address_of(rph)  # the address the sequence writes to
    listed = suppressed([address]) if address else {}
    context = {
        "rph": rph,
        "suppression": next(iter(listed.values()), ""),
        "enrollments": services.enrollments_of(rph),
        "may_change": may_change(request.user, rph),
        "rph_addresses": [rph.email],
        "now": timezone.now(),  # a pause shows while it lasts
    }
    return render(request, "nurture/rph.html", context)


@login_required
@require_POST
def rph_reply(request, pk: int):
    rph = get_object_or_404(visible_to(request.user, RPH.objects.all()), pk=pk)
    if not may_change(request.user, rph):
        raise PermissionDenied
    stopped = services.record_reply(rph, timezone.now())
    if stopped:
        messages.success(request, f"Reply recorded: {rph}'s nurture emails stopped.")
    else:
        messages.info(request, f"Reply recorded for {rph}; no sequence was running.")
    return redirect("nurture:rph", pk=rph.pk)


@login_required
@require_GET
def closed_in_run(request):
    """The leads one run closed for inactivity: where the run's notice leads."""
    try:
        run = datetime.fromisoformat(request.GET.get("run", ""))
    except ValueError:
        raise Http404("No such nurture run.") from None
    closed = Enrollment.objects.filter(status=Enrollment.Status.CLOSED, stopped_at=run)
    rphs = mine(request.user, RPH.objects.filter(nurture_enrollments__in=closed))
    rphs = rphs.select_related("owner").order_by("name", "pk")
    return render(request, "nurture/closed.html", {"run": run, "rphs": list(rphs)})
