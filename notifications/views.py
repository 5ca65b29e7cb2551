from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from crm import absences
from crm.models import Opportunity, User
from crm.templating import rendered
from crm.visibility import visible_to
from notifications import dashboard as dashboard_reads
from notifications import lists, services
from notifications.forms import LoginForm, ReminderForm, UnlockForm
from notifications.models import Notification
from notifications.objects import TYPES

OPEN = Notification.Status.OPEN
PAGE_SIZE = 50


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    redirect_authenticated_user = True


def _with_links(notifications) -> list[Notification]:
    """Each notification with the links of its row (see lists.links)."""
    notifications = list(notifications)
    for n in notifications:
        n.__dict__.update(lists.links(n.pk, n.object_kind, n.object_id, n.link))
    return notifications


def _open_notifications(user: User, now, limit: int) -> list[Notification]:
    """The user's open notifications, most urgent first (see notifications.lists)."""
    return _with_links(lists.open_notifications(user, now)[:limit])


@login_required
@require_GET
def dashboard(request):
    now = timezone.now()
    context = dashboard_reads.read(request.user, now)
    today = timezone.localdate(now)
    context["away"] = list(absences.team_away(request.user, today)[: absences.SHOWN])
    # The cards are a Jinja2 template (crm.templating), the page around them Django's.
    context = {**context, "now": now, "user": request.user}
    cards = rendered(request, "notifications/_dashboard.html", context)
    return render(request, "notifications/dashboard.html", {**context, "content_html": cards})


@login_required
@require_GET
def notification_list(request):
    now = timezone.now()
    everything = notifications = lists.open_notifications(request.user, now)
    if request.GET.get("when") in lists.WHEN:
        notifications = notifications.filter(lists.WHEN[request.GET["when"]])
    page = Paginator(notifications, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = _with_links(page.object_list)
    blocked = everything.filter(blocking=True).exists()
    rows = {"notifications": page.object_list, "now": now, "blocked": blocked}
    return render(
        request,
        "notifications/list.html",
        {
            **rows,
            "rows_html": rendered(request, "notifications/_notification_rows.html", rows),
            "page": page,
            "filters": request.GET,
            "query": _without_page(request.GET),
            "when_choices": lists.WHEN_CHOICES,
            "covering": _with_links(services.covering(request.user, now)[:PAGE_SIZE]),
        },
    )


@login_required
@require_GET
def full_list(request, kind: str):
    user = request.user
    now = timezone.now()
    records = lists.full_list(kind, user, now, request.GET)
    page = Paginator(records, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = {
        "rows": [lists.row(kind, record) for record in page.object_list],
        "user": user,
        "statuses": lists.statuses(kind),
        "stages": Opportunity.Stage.choices,
        "now": now,
    }
    return render(
        request,
        "notifications/full_list.html",
        {
            "kind": kind,
            "heading": lists.LISTS[kind].heading,
            "page": page,
            **rows,
            "rows_html": rendered(request, "notifications/_full_list_rows.html", rows),
            "filters": request.GET,
            "query": _without_page(request.GET),
            "owners": lists.owners(user),
            "when_choices": lists.WHEN_CHOICES,
        },
    )


def _without_page(params) -> str:
    """The GET query string minus `page`, for the pagination links."""
    params = params.copy()
    params.pop("page", None)
    return params.urlencode()


@login_required
@require_GET
def notification_api(request):
    notifications = _open_notifications(request.user, timezone.now(), limit=200)
    return JsonResponse(
        {
            "notifications": [
                {
                    "id": n.pk,
                    "title": n.title,
                    "kind": n.object_kind,
                    "object_id": n.object_id,
                    "blocking": n.blocking,
                    "expires_at": n.expires_at.isoformat(),
                    "grace_deadline": n.grace_deadline.isoformat() if n.grace_deadline else None,
                    "url": n.url,
                }
                for n in notifications
            ]
        }
    )


@login_required
@require_POST
def dismiss(request, pk: int):
    return _quick_action(request, pk, services.dismiss, "Notification dismissed.")


@login_required
@require_POST
def snooze(request, pk: int):
    return _quick_action(request, pk, services.snooze, "Snoozed until tomorrow.")


def _quick_action(request, pk: int, action, done: str):
    """Dismiss or snooze: with htmx the row disappears (an empty swap); without JavaScript,
    back to the page the form came from with a message."""
    notification = get_object_or_404(Notification, pk=pk, user=request.user)
    ok = action(notification, request.user, timezone.now())
    if request.htmx:
        return HttpResponse("") if ok else HttpResponse(status=409)
    if ok:
        messages.success(request, done)
    else:
        messages.error(request, "A blocking notification closes when its object is dealt with.")
    return redirect(_next(request) or reverse("notifications:list"))


def _next(request) -> str:
    """The page a quick action's form came from (`next`), if it is one of ours."""
    url = request.POST.get("next", "")
    ours = url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return url if ours else ""


@login_required
@require_POST
def remind(request):
    form = ReminderForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Reminder not saved: give a date and time.")
        return redirect(_back(request))
    kind, object_id = form.cleaned_data["kind"], form.cleaned_data["object_id"]
    object_type = TYPES[kind]
    model = object_type.open(timezone.now()).model
    if not visible_to(request.user, model.objects.filter(pk=object_id), object_type.team_paths):
        raise Http404
    services.add_reminder(
        request.user,
        kind,
        object_id,
        form.cleaned_data["remind_at"],
        form.cleaned_data["note"],
        timezone.now(),
    )
    messages.success(request, "Reminder added.")
    return redirect(object_type.url_names[0], pk=object_id)


def _back(request) -> str:
    """The page the user came from, if it is one of ours; else the dashboard."""
    referer = request.headers.get("Referer", "")
    ours = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return referer if ours else reverse("dashboard")


@login_required
def locked_users(request):
    user = request.user
    if not (user.is_administrator or user.role == User.Role.MANAGER):
        raise PermissionDenied
    users = services.locked_users(user, timezone.now()).select_related("team", "manager")
    return render(
        request, "notifications/locked.html", {"locked": list(users), "form": UnlockForm()}
    )


@login_required
@require_POST
def unlock(request, pk: int):
    target = get_object_or_404(User, pk=pk)
    if not services.can_unlock(request.user, target):
        raise PermissionDenied
    form = UnlockForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the new time to resolve in hours (1 to 336).")
        return redirect("notifications:locked")
    services.unlock(target, request.user, timezone.now(), form.extension)
    messages.success(request, f"{target} is unlocked for {form.cleaned_data['extend_hours']} h.")
    return redirect("notifications:locked")
