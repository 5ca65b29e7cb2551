"""The mailbox pages: a user's own mailboxes (nobody else's, not even a manager's), adding one,
connecting it with its provider, and removing it."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mailsync import oauth
from mailsync.forms import MailboxForm, PasswordForm
from mailsync.models import Mailbox

SECRETS = ("secret", "access_token")


def _own(request, pk: int) -> Mailbox:
    return get_object_or_404(Mailbox.objects.defer(*SECRETS), pk=pk, owner=request.user)


@sensitive_post_parameters("password")
@login_required
@require_http_methods(["GET", "POST"])
def mailbox_list(request):
    form = MailboxForm(_posted(request), owner=request.user)
    if form.is_valid():
        mailbox = form.create(timezone.now())
        if mailbox is not None and mailbox.auth == Mailbox.Auth.OAUTH2:
            return _to_provider(request, mailbox)
        if mailbox is not None:
            messages.success(request, f"{mailbox.address} added; its first sync starts shortly.")
            return redirect("mailsync:mailboxes")
    mailboxes = request.user.mailboxes.defer(*SECRETS).order_by("address")
    return render(
        request,
        "mailsync/mailbox_list.html",
        {"mailboxes": mailboxes, "form": form},
        status=400 if form.errors else 200,
    )


@sensitive_post_parameters("password")
@login_required
@require_http_methods(["GET", "POST"])
def mailbox_connect(request, pk: int):
    """GET asks (the reconnect notice links here); POST goes to the provider, or takes a new
    password for an IMAP mailbox."""
    mailbox = _own(request, pk)
    is_imap = mailbox.auth == Mailbox.Auth.PASSWORD
    form = PasswordForm(_posted(request)) if is_imap else None
    if request.method == "POST" and not is_imap:
        return _to_provider(request, mailbox)
    if form is not None and form.is_valid():
        form.save(mailbox, timezone.now())
        messages.success(request, f"{mailbox.address}: new password saved; syncing again.")
        return redirect("mailsync:mailboxes")
    return render(
        request,
        "mailsync/mailbox_connect.html",
        {"mailbox": mailbox, "form": form},
        status=400 if form is not None and form.errors else 200,
    )


@login_required
@require_GET
def oauth_callback(request):
    try:
        mailbox = oauth.finish(request)
    except oauth.ConnectFailed as failure:
        messages.error(request, str(failure))
    else:
        messages.success(request, f"{mailbox.address} is connected; its first sync starts shortly.")
    return redirect("mailsync:mailboxes")


@login_required
@require_POST
def mailbox_remove(request, pk: int):
    mailbox = _own(request, pk)
    mailbox.delete()
    messages.success(request, f"{mailbox.address} removed: Vigil no longer reads it.")
    return redirect("mailsync:mailboxes")


def _posted(request):
    return request.POST if request.method == "POST" else None


def _to_provider(request, mailbox: Mailbox):
    try:
        return redirect(oauth.start(request, mailbox))
    except oauth.ConnectFailed as failure:
        messages.error(request, str(failure))
        return redirect("mailsync:mailboxes")
