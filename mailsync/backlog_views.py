"""Pages of the email backlog: the list of every email one may read, an email (and linking it
to a record by hand), and the threads of an account, contact or lead."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from crm.links import record_url
from crm.models import RPH, Account, Contact
from crm.paging import list_response
from crm.visibility import visible_to
from mailsync import backlog
from mailsync.models import BacklogEmail

# Nothing an email says may load or run anything: its HTML is sanitised when stored, and the
# page allows no remote images, frames or scripts besides our own.
EMAIL_CSP = "default-src 'self'; img-src 'self' data:; frame-src 'self'; object-src 'none'"
Direction = BacklogEmail.Direction


class EmailListForm(forms.Form):
    """The list's GET parameters. A bad one is left out, with its error shown."""

    q = forms.CharField(required=False, max_length=backlog.SEARCH_LENGTH, strip=True)
    direction = forms.ChoiceField(
        required=False, choices=[("", "Received and sent"), *Direction.choices]
    )
    crm = forms.BooleanField(required=False, label="Sent from the CRM")
    unlinked = forms.BooleanField(required=False, label="Not linked to a record")
    thread = forms.CharField(required=False, max_length=255)
    older = forms.CharField(required=False)
    newer = forms.CharField(required=False)

    def clean_older(self) -> backlog.Cursor | None:
        return self._cursor("older")

    def clean_newer(self) -> backlog.Cursor | None:
        return self._cursor("newer")

    def _cursor(self, name: str) -> backlog.Cursor | None:
        text = self.cleaned_data[name]
        try:
            return backlog.Cursor.parse(text) if text else None
        except ValueError:
            raise forms.ValidationError(
                "That page link is not valid: showing the newest."
            ) from None

    def filters(self) -> backlog.EmailFilters:
        data = self.cleaned_data
        return backlog.EmailFilters(
            search=data.get("q", ""),
            direction=data.get("direction", ""),
            sent_from_crm=data.get("crm", False),
            unlinked=data.get("unlinked", False),
            thread=data.get("thread", ""),
        )

    def errors_in_a_line(self) -> str:
        return " ".join(str(e) for errors in self.errors.values() for e in errors)


@login_required
@require_GET
def email_list(request):
    form = EmailListForm(request.GET)
    form.is_valid()  # the valid parameters apply; the others are named in `problem`
    data = form.cleaned_data
    parts, count = backlog.counted(backlog.email_list(request.user, form.filters()))
    page = backlog.newest_page(parts, older_than=data.get("older"), newer_than=data.get("newer"))
    for email in page.emails:
        email.url = record_url("backlog:email", email.pk)  # type: ignore[attr-defined]
    context = {
        "form": form,
        "page": page,
        "count": count,
        "cap": backlog.COUNT_CAP,
        "query": _without_cursor(request.GET),
        "problem": form.errors_in_a_line(),
        "thread": form.filters().thread,
        "now": timezone.now(),
    }
    return list_response(request, "mailsync/emails.html", "mailsync/_email_rows.html", context)


def _without_cursor(params) -> str:
    """The GET query string without the page cursor, for the newer/older links."""
    params = params.copy()
    for name in ("older", "newer"):
        params.pop(name, None)
    return params.urlencode()


def _visible_email(request, pk: int) -> BacklogEmail:
    emails = BacklogEmail.objects.filter(backlog.visible_to(request.user)).defer("raw")
    return get_object_or_404(emails, pk=pk)


@login_required
@require_GET
def email_detail(request, pk: int):
    email = _visible_email(request, pk)
    context = {"email": email, **_links_context(request, email)}
    if request.htmx and "find" in request.GET:
        response = render(request, "mailsync/_email_links.html", context)
    else:
        gone = (
            email.copies.filter(backlog.copies_visible_to(request.user), gone_at__isnull=False)
            .select_related("mailbox")
            .order_by("gone_at", "pk")
        )
        response = render(request, "mailsync/email.html", {**context, "gone": gone})
    response["Content-Security-Policy"] = EMAIL_CSP
    patch_vary_headers(response, ["HX-Request"])
    return response


def _links_context(request, email: BacklogEmail) -> dict:
    """What the email page shows of the records the email is linked to, and the form that
    links it to another (with the records found for `find`)."""
    find = request.GET.get("find", "")[:100].replace("\x00", "")  # PostgreSQL refuses NUL
    return {
        "linked": backlog.records_of(request.user, email),
        "linkable": backlog.linkable_addresses(email),
        "find": find,
        "found": backlog.find_records(request.user, find),
    }


class LinkForm(forms.Form):
    record = forms.RegexField(regex=r"^(contact|rph|account):\d{1,18}$")
    address = forms.CharField(max_length=320)


@login_required
@require_POST
def email_link(request, pk: int):
    """Link one of an email's addresses to a contact, lead or account: only an email the
    user may read, only to a record they may see (anything else is not found)."""
    email = _visible_email(request, pk)
    form = LinkForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the email's addresses and a record to link it to.")
        return _after_link(request, email)
    kind, record_pk = form.cleaned_data["record"].split(":")
    record = backlog.linkable_record(request.user, kind, int(record_pk))
    if record is None:
        raise Http404("No such record.")
    try:
        backlog.link(email, form.cleaned_data["address"], record, request.user, timezone.now())
    except backlog.LinkRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(
            request,
            f"{form.cleaned_data['address']} is linked to {record}: its emails, past and "
            "future, are the record's.",
        )
    return _after_link(request, email)


def _after_link(request, email: BacklogEmail):
    """With htmx, the page's links section again (with the message); else the email page."""
    if not request.htmx:
        return redirect("backlog:email", pk=email.pk)
    response = render(
        request, "mailsync/_email_links.html", {"email": email, **_links_context(request, email)}
    )
    response["Content-Security-Policy"] = EMAIL_CSP
    return response


@login_required
@require_GET
def account_emails(request, pk: int):
    account = get_object_or_404(visible_to(request.user, Account.objects.all()), pk=pk)
    return _threads(request, str(account), backlog.addresses_of(account))


@login_required
@require_GET
def contact_emails(request, pk: int):
    contact = get_object_or_404(visible_to(request.user, Contact.objects.all()), pk=pk)
    return _threads(request, str(contact), backlog.addresses_of(contact))


@login_required
@require_GET
def rph_emails(request, pk: int):
    rph = get_object_or_404(visible_to(request.user, RPH.objects.all()), pk=pk)
    return _threads(request, str(rph), backlog.addresses_of(rph))


def _threads(request, subject: str, addresses: list[str]):
    context = {"subject": subject, "addresses": list(dict.fromkeys(a for a in addresses if a))}
    return render(request, "mailsync/threads.html", context)
