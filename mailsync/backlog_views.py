"""Pages of the email backlog: an email, and the threads of an account, contact or lead."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from crm.models import RPH, Account, Contact
from crm.visibility import visible_to
from mailsync import backlog
from mailsync.models import BacklogEmail

# Nothing an email says may load or run anything: its HTML is sanitised when stored, and the
# page allows no remote images, frames or scripts besides our own.
EMAIL_CSP = "default-src 'self'; img-src 'self' data:; frame-src 'self'; object-src 'none'"


@login_required
@require_GET
def email_detail(request, pk: int):
    emails = BacklogEmail.objects.filter(backlog.visible_to(request.user)).defer("raw")
    email = get_object_or_404(emails, pk=pk)
    gone = (
        email.copies.filter(backlog.copies_visible_to(request.user), gone_at__isnull=False)
        .select_related("mailbox")
        .order_by("gone_at", "pk")
    )
    response = render(request, "mailsync/email.html", {"email": email, "gone": gone})
    response["Content-Security-Policy"] = EMAIL_CSP
    return response


@login_required
@require_GET
def account_emails(request, pk: int):
    account = get_object_or_404(visible_to(request.user, Account.objects.all()), pk=pk)
    addresses = list(account.contacts.exclude(email="").values_list("email", flat=True))
    return _threads(request, str(account), addresses)


@login_required
@require_GET
def contact_emails(request, pk: int):
    contact = get_object_or_404(visible_to(request.user, Contact.objects.all()), pk=pk)
    return _threads(request, str(contact), [contact.email])


@login_required
@require_GET
def rph_emails(request, pk: int):
    rph = get_object_or_404(visible_to(request.user, RPH.objects.all()), pk=pk)
    return _threads(request, str(rph), [rph.email])


def _threads(request, subject: str, addresses: list[str]):
    context = {"subject": subject, "addresses": [a for a in addresses if a]}
    return render(request, "mailsync/threads.html", context)
