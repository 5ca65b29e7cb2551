"""The blocking gate. While a user has an open blocking notification about an object that still
needs attention, every page and API endpoint sends them to the resolution list (HTML) or answers
423 (API, htmx), except what they need to resolve it. Once a grace deadline passes, every
session of theirs ends. Costs one query per request, none for anonymous users, whose API
calls get 401 rather than the HTML login page."""

from django.contrib.auth import logout
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone

from notifications import services
from notifications.objects import TYPES

# Always reachable: signing in or out, and the health check.
# Open to everyone, blocked or not: an unsubscribe link must work for whoever follows it.
OPEN_URL_NAMES = {
    "login",
    "logout",
    "health",
    "mailsync:unsubscribe",
    "mailsync:tracking_webhook",
    "calendar_feed",  # a calendar client's, by its secret key, with no session
}
# Reachable while blocked: the resolution list. Dismiss and snooze are not: a blocking
# notification closes only when its object is dealt with (its own pages and actions, below),
# and clearing other reminders is not dealing with it.
RESOLUTION_URL_NAMES = {"notifications:list", "notifications:api"}
# The "Remind me" form of every object page: it names its object in its fields, not its URL.
REMINDER_URL_NAME = "notifications:remind"
API_PREFIX = "/api/"


class BlockingGate:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if not user.is_authenticated:
            if request.path.startswith(API_PREFIX):
                return _unauthenticated()
            return self.get_response(request)
        url_name, object_id = _route(request)
        if url_name in OPEN_URL_NAMES:
            return self.get_response(request)
        if user.is_administrator and request.path.startswith(reverse("admin:index")):
            return self.get_response(request)  # break-glass: the admin never locks out
        now = timezone.now()
        blocking = services.blocking_for(user, now)
        if not blocking:
            return self.get_response(request)
        overdue = [pk for _, _, deadline, pk in blocking if deadline < now]
        if overdue and not user.is_administrator:
            services.lock_out(user, overdue, now)
            logout(request)
            return _refuse(
                request,
                "locked",
                "Your sessions were ended: a blocking notification passed its deadline.",
                f"{reverse('login')}?locked=1",
            )
        if url_name in RESOLUTION_URL_NAMES or _resolves(request, url_name, object_id, blocking):
            return self.get_response(request)
        return _refuse(
            request,
            "blocked",
            "Resolve your blocking notifications first.",
            f"{reverse('notifications:list')}?blocked=1",
        )


def _route(request) -> tuple[str | None, int | None]:
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None, None
    pk = match.kwargs.get("pk")
    return match.view_name, pk if isinstance(pk, int) else None


def _resolves(request, url_name, object_id, blocking) -> bool:
    """Is this the page, an action or a form of an object a blocking notification is about?"""
    if url_name == REMINDER_URL_NAME:
        named = (request.POST.get("kind"), request.POST.get("object_id"))
        return any(named == (kind, str(blocked_id)) for kind, blocked_id, _, _ in blocking)
    return any(
        url_name in TYPES[kind].url_names and object_id == blocked_id
        for kind, blocked_id, _, _ in blocking
    )


def _wants_json(request) -> bool:
    return (
        request.path.startswith("/api/")
        or request.headers.get("HX-Request") == "true"
        or request.headers.get("Accept", "").startswith("application/json")
    )


def _unauthenticated():
    response = JsonResponse(
        {"error": "unauthenticated", "detail": "Sign in first.", "login": reverse("login")},
        status=401,
    )
    # A 401 names how to authenticate; Vigil's API uses the session of the login page.
    response["WWW-Authenticate"] = 'Session realm="Vigil"'
    return response


def _refuse(request, error: str, message: str, location: str):
    if _wants_json(request):
        return JsonResponse({"error": error, "detail": message, "resolve_at": location}, status=423)
    return redirect(location)
