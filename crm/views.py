"""Pages for the core sales objects. Thin: fetch within what the user may see, call a
service, render or redirect."""

from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from crm import services
from crm.dates import when
from crm.links import record_url
from crm.models import Dispatch, Event, Opportunity, Task, User
from crm.records import may_edit
from crm.visibility import may_change, visible_to

ACCOUNT_PAGE = "parc:account"  # the account's page, named rather than imported


def _get(user: User, queryset, pk: int):
    return get_object_or_404(visible_to(user, queryset), pk=pk)


def _get_to_change(user: User, queryset, pk: int):
    """The object, if the user may see it and is its owner, a manager or an administrator."""
    obj = _get(user, queryset, pk)
    if not may_change(user, obj):
        raise PermissionDenied
    return obj


def object_page(request, kind: str, obj, fields, actions="", **extra):
    """The page every sales object shares: its fields, its actions, a reminder form."""
    context = {"kind": kind, "object": obj, "fields": fields, "actions": actions, **extra}
    return render(request, "crm/object_detail.html", context)


def _edit_url(user: User, kind: str, obj) -> str:
    """Where the owner, a manager or an administrator edits the object (crm.records), for
    those its form lets in (crm.records.may_edit): no finance user."""
    return reverse(f"{kind}_edit", args=[obj.pk]) if may_edit(user, obj) else ""


def _account(account) -> str:
    """The account's name, linking to its page."""
    if account is None:
        return "—"
    return format_html('<a href="{}">{}</a>', record_url(ACCOUNT_PAGE, account.pk), account)


@login_required
def task_detail(request, pk: int):
    task = _get(request.user, Task.objects.select_related("owner", "account", "opportunity"), pk)
    fields = [
        ("Kind", task.get_kind_display()),
        ("Owner", task.owner),
        ("Account", _account(task.account)),
        ("Due", when(task.due_at)),
        ("Status", task.get_status_display()),
    ]
    edit_url = _edit_url(request.user, "task", task)
    return object_page(request, "task", task, fields, "crm/task_actions.html", edit_url=edit_url)


@login_required
@require_POST
def task_complete(request, pk: int):
    task = _get_to_change(request.user, Task.objects.all(), pk)
    services.complete_task(task, request.user, timezone.now())
    if request.htmx:  # a quick action: the row's action cell, swapped in place
        return render(request, "crm/_task_done.html", {"task": task})
    messages.success(request, f"Task “{task.title}” completed.")
    return redirect(_next(request) or reverse("task_detail", args=[task.pk]))


def _next(request) -> str:
    """The page a quick action's form came from (`next`), if it is one of ours."""
    url = request.POST.get("next", "")
    ours = url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return url if ours else ""


@login_required
def opportunity_detail(request, pk: int):
    opportunity = _get(request.user, Opportunity.objects.select_related("owner", "account"), pk)
    fields = [
        ("Account", _account(opportunity.account)),
        ("Owner", opportunity.owner),
        ("Stage", opportunity.get_stage_display()),
        ("Amount", opportunity.amount),
        ("Expected close", when(opportunity.expected_close)),
        ("Last touched", when(opportunity.updated_at)),
    ]
    return object_page(
        request,
        "opportunity",
        opportunity,
        fields,
        "crm/opportunity_actions.html",
        stages=Opportunity.Stage.choices,
        edit_url=_edit_url(request.user, "opportunity", opportunity),
    )


@login_required
@require_POST
def opportunity_update(request, pk: int):
    opportunity = _get_to_change(request.user, Opportunity.objects.all(), pk)
    try:
        close = request.POST.get("expected_close")
        services.update_opportunity(
            opportunity,
            request.user,
            timezone.now(),
            stage=request.POST.get("stage") or None,
            expected_close=date.fromisoformat(close) if close else None,
        )
    except (ValueError, services.NotAllowed) as exc:
        if request.htmx:
            return HttpResponse(f"Not saved: {exc}.", status=400, content_type="text/plain")
        messages.error(request, f"Not saved: {exc}.")
    else:
        if request.htmx:  # a quick stage change: its form, swapped in place, says it saved
            context = {
                "url": request.path,
                "stage": opportunity.stage,
                "pk": opportunity.pk,
                "stages": Opportunity.Stage.choices,
                "saved": True,
            }
            return render(request, "crm/_stage.html", context)
        messages.success(request, f"Opportunity “{opportunity.name}” updated.")
    return redirect(_next(request) or reverse("opportunity_detail", args=[opportunity.pk]))


@login_required
def event_detail(request, pk: int):
    event = _get(request.user, Event.objects.select_related("owner", "account"), pk)
    fields = [
        ("Owner", event.owner),
        ("Account", _account(event.account)),
        ("Starts", when(event.start_at)),
        ("Ends", when(event.end_at, ago=False)),
    ]
    return object_page(
        request, "event", event, fields, edit_url=_edit_url(request.user, "event", event)
    )


@login_required
def dispatch_detail(request, pk: int):
    dispatch = _get(request.user, Dispatch.objects.select_related("team", "owner", "account"), pk)
    fields = [
        ("Team", dispatch.team),
        ("Owner", dispatch.owner),
        ("Account", _account(dispatch.account)),
        ("Scheduled", when(dispatch.scheduled_at)),
        ("Due", when(dispatch.due_at)),
        ("Status", dispatch.get_status_display()),
    ]
    return object_page(request, "dispatch", dispatch, fields)
