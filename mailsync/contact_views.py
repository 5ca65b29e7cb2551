"""The contact page: its details, its status with reason and history and the form that changes
it, its account and leads, whether its address is suppressed (and, for an administrator, the
lift form), and its latest email threads. The contact's forms and services are crm.contacts;
the suppression list is mailsync.suppression's."""

from datetime import datetime, timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from crm import contacts, ledger, runner
from crm.leads import OneLineErrors
from crm.models import RPH, Contact
from crm.visibility import visible_to
from mailsync import backlog, suppression
from mailsync.models import Suppression

SUPPRESSION_JOB = "suppression_build"  # mailsync/jobs.py: lists rejected contacts' addresses
LEADS = 20  # the contact's leads the page lists


class LiftForm(OneLineErrors, forms.Form):
    why = forms.CharField(
        label="Why lift it",
        max_length=1000,
        widget=forms.TextInput(attrs={"size": 40}),
        help_text="Kept in the audit trail.",
    )


@login_required
@require_GET
def contact_detail(request, pk: int):
    contact = get_object_or_404(_visible_contacts(request.user), pk=pk)
    return _contact_page(request, contact)


def _visible_contacts(user):
    return visible_to(user, Contact.objects.select_related("account"))


def _contact_page(request, contact: Contact, lift_form: LiftForm | None = None, status=200):
    """A constant number of queries: the contact, its history, its leads, its suppression,
    the suppression run's schedule, its addresses and its threads."""
    user, now = request.user, timezone.now()
    listed = suppression.listing(contact.email) if contact.email else None
    next_run = _next_suppression_run(contact, listed, now)
    leads = visible_to(user, RPH.objects.filter(contact=contact).select_related("owner"))
    context = {
        "contact": contact,
        "now": now,
        "may_change": contacts.may_change(user, contact),
        "status_form": contacts.StatusForm(initial={"to": contact.status}),
        "history": contacts.history_of(contact),
        "leads": list(leads.order_by("-last_activity_at", "-pk")[:LEADS]),
        "suppression": listed,
        "lift_form": lift_form or LiftForm(),
        "may_lift": user.is_administrator,
        "next_run": next_run,
        "run_tonight": isinstance(next_run, datetime) and next_run - now <= timedelta(days=1),
        "addresses": backlog.addresses_of(contact),
    }
    return render(request, "mailsync/contact.html", context, status=status)


def _next_suppression_run(
    contact: Contact, listed: Suppression | None, now: datetime
) -> datetime | str | None:
    """When the run that lists a rejected contact's address next runs, if it is still to be
    listed: the schedule an administrator set, or the job's default. None when nothing is
    waiting, or "disabled" when the run is switched off."""
    if contact.status != Contact.Status.REJECTED or not contact.email or listed is not None:
        return None
    expression, tz, enabled = runner.schedule_of(SUPPRESSION_JOB)
    return ledger.next_run(expression, tz, enabled, now) or "disabled"


@login_required
@require_POST
def contact_lift(request, pk: int):
    contact = get_object_or_404(_visible_contacts(request.user), pk=pk)
    if not request.user.is_administrator:
        raise PermissionDenied
    form = LiftForm(request.POST)
    if not form.is_valid() or not contact.email:
        return _contact_page(request, contact, lift_form=form, status=400)
    address = suppression.normalise(contact.email)
    rows = Suppression.objects.filter(address=address)
    lifted = suppression.lift(rows, request.user, form.cleaned_data["why"], timezone.now())
    if lifted:
        messages.success(request, f"{address} is no longer suppressed.")
    else:
        messages.info(request, f"{address} was not suppressed.")
    return redirect("mailsync:contact", pk=contact.pk)
