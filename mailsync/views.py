"""Unsubscribe pages. The link's GET only asks (mail scanners follow links); POST, from the
page's button or a mail client's RFC 8058 one-click request, unsubscribes."""

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from mailsync import suppression
from mailsync.models import Suppression


# The signed token is the credential: a one-click POST comes from the recipient's mail
# provider, with neither a session nor a CSRF token.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    try:
        address = suppression.address_of(token)
    except suppression.BadToken:
        return render(request, "mailsync/unsubscribe_invalid.html", status=400)
    if request.method == "GET":
        return render(request, "mailsync/unsubscribe_confirm.html", {"address": address})
    suppression.suppress(
        address,
        Suppression.Source.UNSUBSCRIBE,
        "unsubscribed through the link in an email",
        timezone.now(),
    )
    return render(request, "mailsync/unsubscribe_done.html", {"address": address})
