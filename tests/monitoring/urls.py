"""The site's pages plus two that go wrong, for the error-capture tests."""

import logging

from django.http import HttpResponse
from django.urls import include, path

log = logging.getLogger("tests.monitoring.views")


def fails(request):
    # An exception message that repeats what the request carried, as careless code does.
    raise ValueError(
        f"could not charge: password={request.POST.get('password')} "
        f"token={request.GET.get('token')} auth={request.META.get('HTTP_AUTHORIZATION')} "
        f"key={request.META.get('HTTP_X_API_KEY')} cookies={request.COOKIES} "
        f"session={request.session.session_key}"
    )


def logs(request):
    log.error("refund of invoice %s refused", request.GET.get("invoice"))
    return HttpResponse("done")


urlpatterns = [
    path("test/fails/", fails),
    path("test/logs/", logs),
    path("", include("crm.urls")),
]
