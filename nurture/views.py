"""The lead page (details, edit form, status moves, its nurture sequence as a timeline, the
reply button), and a run's closures. The lead's forms and services are crm.leads."""

from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from crm import leads
from crm.models import RPH
from crm.visibility import may_change, mine, visible_to
from mailsync import backlog
from mailsync.models import BacklogEmail
from mailsync.suppression import suppressed
from nurture import places, sending, services
from nurture.models import Enrollment


@login_required
@require_GET
def rph_detail(request, pk: int):
    rph = get_object_or_404(_visible_rphs(request.user), pk=pk)
    return _lead_page(request, rph, leads.LeadForm(instance=rph, user=request.user))


def _visible_rphs(user):
    return visible_to(user, RPH.objects.select_related("owner", "contact__account"))


def _lead_page(request, rph: RPH, form, problem: str = "", status: int = 200):
    """The lead: its details and edit form, its status moves and their history, its nurture
    enrollments as a timeline, the reply button, and its emails. A constant number of
    queries."""
    address = sending.address_of(rph)  # the address the sequence writes to
    listed = suppressed([address]) if address else {}
    enrollments = services.enrollments_of(rph)
    _attach_emails(request.user, enrollments)
    context = {
        "rph": rph,
        "where": places.described(rph),  # the time zone its emails go out in, and why
        "lead_zone": places.place_of(rph, places.Place(settings.TIME_ZONE)).zone,
        "form": form,
        "problem": problem,
        "moves": [RPH.Status(to) for to in RPH.MOVES.get(rph.status, ())],
        "history": leads.history_of(rph),
        "suppression": next(iter(listed.values()), ""),
        "enrollments": enrollments,
        # In Nurture P2 without a running enrollment: no active sequence (yet).
        "waiting": rph.status == RPH.Status.NURTURE_P2
        and not any(e.status == Enrollment.Status.ACTIVE for e in enrollments),
        "may_change": may_change(request.user, rph),
        "rph_addresses": backlog.addresses_of(rph),  # its own and those linked by hand
        "now": timezone.now(),  # a pause shows while it lasts
    }
    if request.htmx:
        status = 200  # htmx swaps only a successful response; the page says what was wrong
    return render(request, "nurture/rph.html", context, status=status)


def _attach_emails(user, enrollments) -> None:
    """Each enrollment gets `.timeline`: its steps sent, each with the email as sent (the
    backlog row of its outbox message) when the user may read it. One query in all."""
    steps = [done for enrollment in enrollments for done in enrollment.steps_done]
    keys = [done.sent.outbox_key for done in steps if done.sent.outbox_key]
    emails = BacklogEmail.objects.filter(backlog.visible_to(user), outbox__key__in=keys)
    by_key = {
        key: {"pk": pk, "subject": subject}
        for key, pk, subject in emails.values_list("outbox__key", "pk", "subject")
    }
    for enrollment in enrollments:
        enrollment.timeline = [
            (done, by_key.get(done.sent.outbox_key)) for done in enrollment.steps_done
        ]


@login_required
@require_POST
def rph_edit(request, pk: int):
    rph = leads.lead_to_change(request.user, pk)
    form = leads.LeadForm(request.POST, instance=rph, user=request.user)
    if not form.is_valid():
        # The page again, with what was typed and one line per problem; the stored lead
        # stays as it was for the rest of the page.
        rph.refresh_from_db()
        return _lead_page(request, rph, form, status=400)
    leads.update_lead(form, timezone.now())
    messages.success(request, f"Lead “{rph}” saved.")
    return redirect("nurture:rph", pk=rph.pk)


@login_required
@require_POST
def rph_status(request, pk: int):
    rph = leads.lead_to_change(request.user, pk)
    to = request.POST.get("to", "")
    try:
        leads.move_status(rph, to, request.user, timezone.now())
    except leads.NotAllowed as exc:
        form = leads.LeadForm(instance=rph, user=request.user)
        return _lead_page(request, rph, form, problem=f"Not moved: {exc}.", status=400)
    messages.success(request, f"Lead “{rph}” moved to {rph.get_status_display()}.")
    return redirect("nurture:rph", pk=rph.pk)


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
