"""Contacts for reps, managers and administrators: the list, creating and editing a contact,
and changing its status (each change audited, with its reason).

The contact's own page shows its suppression and its email too, so it lives with mailsync
(mailsync/contact_views.py, URL name `mailsync:contact`) and uses the forms and services here:
crm imports no other app. Marking a contact rejected puts its address on the suppression list
at the next `suppression_build` run; nothing here writes the list."""

from dataclasses import dataclass
from datetime import datetime

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from crm import paging
from crm.accounts import save_edit, saved_fields, sells
from crm.forms import ModelChoiceField
from crm.leads import OneLineErrors, owners_for
from crm.matching import BITMAP, TAILS, TEAM_WALK_PER_ROW, WALK_PER_ROW, Search
from crm.models import Account, Contact, ContactStatusChange, User
from crm.records import an_id
from crm.visibility import visible_to

CONTACT_PAGE = "mailsync:contact"  # the contact's page, named rather than imported
PAGE_SIZE = paging.PAGE_SIZE
COUNT_CAP = paging.COUNT_CAP
REASON_LENGTH = 500  # Contact.status_reason, ContactStatusChange.reason
ACCOUNT_CHOICES = 200  # a form lists this many accounts; others come preselected (?account=)
HISTORY = 100


class NotAllowed(Exception):
    """A status change the contact's current status, or the reason given, does not allow."""


# --- Who may work on contacts --------------------------------------------------------------------


def may_work_on(user: User, account: Account) -> bool:
    """Whether `user` may create, edit and change the status of the contacts of `account`
    (one they may see): its account manager, a rep or manager of its team (reps work their
    team's accounts' contacts), an administrator. Finance users look but do not touch
    (crm.accounts.sells). `accounts_to_work_on` is the same rule as a query."""
    if user.is_administrator:
        return True
    if not sells(user):
        return False
    if account.account_manager_id == user.pk:
        return True
    return account.team_id is not None and account.team_id == user.team_id


def accounts_to_work_on(user: User) -> QuerySet[Account]:
    """The accounts `user` may see and may work on the contacts of (may_work_on, in SQL)."""
    accounts = visible_to(user, Account.objects.all())
    if user.is_administrator:
        return accounts
    if not sells(user):
        return accounts.none()
    rule = Q(account_manager=user.pk)
    if user.team_id is not None:
        rule |= Q(team=user.team_id)
    return accounts.filter(rule)


def may_change(user: User, contact: Contact) -> bool:
    return may_work_on(user, contact.account)


def contact_to_change(user: User, pk: int) -> Contact:
    """The contact, if `user` may see it and work on it."""
    contacts = visible_to(user, Contact.objects.select_related("account"))
    contact = get_object_or_404(contacts, pk=pk)
    if not may_change(user, contact):
        raise PermissionDenied
    return contact


# --- Services ----------------------------------------------------------------------------------


def change_status(
    contact: Contact, to: str, reason: str, by: User, now: datetime
) -> ContactStatusChange:
    """Give the contact the status `to`, for `reason` (required for rejected), and record who
    did, when, from what and why. A conditional UPDATE, so two people changing the same contact
    at once cannot both succeed from the same status."""
    reason = reason.strip()
    if to not in Contact.Status.values:
        raise NotAllowed(f"{to!r} is not a contact status")
    if to == contact.status:
        raise NotAllowed(f"the contact is {contact.get_status_display()} already")
    if to == Contact.Status.REJECTED and not reason:
        raise NotAllowed("give a reason for rejecting the contact")
    if len(reason) > REASON_LENGTH or "\x00" in reason:
        raise NotAllowed(f"a reason has at most {REASON_LENGTH} characters and no NUL")
    with transaction.atomic():
        changed = Contact.objects.filter(pk=contact.pk, status=contact.status).update(
            status=to, status_reason=reason, status_changed_at=now
        )
        if changed != 1:
            raise NotAllowed("someone else changed its status meanwhile; reload the page")
        change = ContactStatusChange.objects.create(
            contact=contact, by=by, at=now, from_status=contact.status, to_status=to, reason=reason
        )
    contact.status, contact.status_reason, contact.status_changed_at = to, reason, now
    return change


def history_of(contact: Contact) -> list[ContactStatusChange]:
    changes = contact.status_changes.select_related("by").order_by("-at", "-pk")
    return list(changes[:HISTORY])


# --- Forms -------------------------------------------------------------------------------------


class ContactForm(OneLineErrors, forms.ModelForm):
    """A contact's name, email, phone and account: one of the accounts the user may work on.
    The list offers the first ACCOUNT_CHOICES of them by name, and the current one; any other
    comes preselected from its account's page (/contacts/new?account=<pk>)."""

    class Meta:
        model = Contact
        fields = ["name", "email", "phone", "account"]

    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["account"]
        accounts = accounts_to_work_on(user).order_by("name", "pk")
        field.queryset = accounts  # type: ignore[attr-defined]
        field.empty_label = "Choose an account"  # type: ignore[attr-defined]
        current = self["account"].value()
        listed = list(accounts.values_list("pk", "name")[: ACCOUNT_CHOICES + 1])
        if len(listed) > ACCOUNT_CHOICES:
            listed = listed[:ACCOUNT_CHOICES]
            field.help_text = (
                f"The first {ACCOUNT_CHOICES} accounts by name; for another, use "
                "“New contact” on the account's page."
            )
        if pk := an_id(current):  # asked for whether listed or not: one query
            chosen = accounts.filter(pk=pk).values_list("pk", "name")
            listed = list(dict([*listed, *chosen]).items())
        field.widget.choices = [("", "Choose an account"), *listed]

    def save(self, commit: bool = True) -> Contact:
        """An edit writes the form's fields only: a status changed meanwhile (change_status)
        stays changed, and so does its reason and time."""
        contact = super().save(commit=False)
        if commit:
            if contact._state.adding:
                contact.save()
            else:
                save_edit(contact, saved_fields(self))
        return contact


class StatusForm(OneLineErrors, forms.Form):
    to = forms.ChoiceField(label="New status", choices=Contact.Status.choices)
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=REASON_LENGTH,
        widget=forms.TextInput(attrs={"size": 40}),
        help_text="Required when rejecting.",
    )

    def clean(self):
        data = super().clean() or {}
        if data.get("to") == Contact.Status.REJECTED and not (data.get("reason") or "").strip():
            self.add_error("reason", "Give a reason for rejecting the contact.")
        return data


SORTS = {
    "name": ("name", "pk"),
    "-name": ("-name", "-pk"),
    "status": ("status", "name", "pk"),
}


class ContactFilterForm(OneLineErrors, paging.Filters, forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *Contact.Status.choices]
    )
    # A hidden pk, not a list of every account: the rows and the account's page link to it.
    account = forms.ModelChoiceField(
        required=False, queryset=Account.objects.none(), widget=forms.HiddenInput
    )
    owner = ModelChoiceField(
        label="Account manager",
        required=False,
        queryset=User.objects.none(),
        empty_label="Everyone",
    )
    sort = forms.ChoiceField(
        required=False,
        choices=[("name", "Name A–Z"), ("-name", "Name Z–A"), ("status", "Status")],
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=COUNT_CAP)

    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["account"].queryset = visible_to(user, Account.objects.all())  # type: ignore[attr-defined]
        if user.role == User.Role.REP and not user.is_administrator:
            del self.fields["owner"]
        else:
            self.fields["owner"].queryset = owners_for(user)  # type: ignore[attr-defined]


def contacts_for_list(user: User, form: ContactFilterForm) -> QuerySet[Contact]:
    """The contacts `user` may see, filtered (all but the search: search_of) and ordered as
    the list's form says."""
    contacts = visible_to(user, Contact.objects.all())
    if form.value("status"):
        contacts = contacts.filter(status=form.value("status"))
    if form.value("account"):
        contacts = contacts.filter(account=form.value("account"))
    if form.value("owner"):
        contacts = contacts.filter(account__account_manager=form.value("owner"))
    return contacts.order_by(*SORTS[form.value("sort") or "name"])


@dataclass(frozen=True, slots=True)
class ContactRow:
    """A contact as the list shows it, read as values (crm.paging.rows_as)."""

    pk: int
    name: str
    email: str
    phone: str
    status: str
    account_id: int
    account_name: str
    account_manager: str  # their name, "" for none

    def get_status_display(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


STATUS_LABELS = dict(Contact.Status.choices)
ROW_COLUMNS = ("pk", "name", "email", "phone", "status", "account_id", "account__name")


def contact_rows(contacts: QuerySet[Contact]) -> list[ContactRow]:
    return paging.rows_as(ContactRow, contacts, ROW_COLUMNS, "account__account_manager")


def search_of(form: ContactFilterForm) -> Search:
    """The list's search box: name or email. Every order, and the status and account filters,
    have an index (a team's and everyone's) to walk for the first matches; the account
    manager is the account's, a join no index holds: PostgreSQL's own plan reads it
    (crm.matching). Past the walk, a team's matches are read from an index of their own
    (crm 0025), a tenth of everyone's: its walk is shorter (TEAM_WALK_PER_ROW); everyone's
    from the start indexes and the tail index (crm 0022, 0025)."""
    if form.user.is_administrator:
        walk, read = WALK_PER_ROW, TAILS
    else:
        walk, read = TEAM_WALK_PER_ROW, BITMAP
    return form.search(("name", "email"), walk=0 if form.value("owner") else walk, read=read)


# --- Views -------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def contact_list(request):
    form = ContactFilterForm(request.GET, user=request.user)
    form.is_valid()  # the valid parameters apply; the others are named above the list
    contacts = contacts_for_list(request.user, form)
    listed = paging.listed(
        contacts, form.value("page") or 1, PAGE_SIZE, search=search_of(form), read=contact_rows
    )
    context = {
        "form": form,
        **listed.context(),
        "query": _without(request.GET, "page"),
        "account": form.value("account"),
        "all_accounts": _without(request.GET, "page", "account"),
        "problems": form.error_lines(),
        "contact_page": CONTACT_PAGE,
        "may_create": sells(request.user),
    }
    return paging.list_response(
        request, "crm/contacts/list.html", "crm/contacts/_rows.html", context
    )


def _without(params, *names: str) -> str:
    params = params.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()


@login_required
@require_http_methods(["GET", "POST"])
def contact_create(request):
    if not sells(request.user):
        raise PermissionDenied
    initial = {}
    if account := an_id(request.GET.get("account")):
        initial["account"] = account
    form = ContactForm(request.POST or None, initial=initial, user=request.user)
    if request.method == "POST" and form.is_valid():
        contact = form.save()
        messages.success(request, f"Contact “{contact}” created.")
        return redirect(CONTACT_PAGE, pk=contact.pk)
    status = 400 if form.is_bound else 200
    context = {"form": form, "contact_page": CONTACT_PAGE}
    return render(request, "crm/contacts/new.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def contact_edit(request, pk: int):
    contact = contact_to_change(request.user, pk)
    name = contact.name  # the page's title stays the stored name while the form is wrong
    form = ContactForm(request.POST or None, instance=contact, user=request.user)
    if request.method == "POST" and form.is_valid():
        contact = form.save()
        messages.success(request, f"Contact “{contact}” saved.")
        return redirect(CONTACT_PAGE, pk=contact.pk)
    status = 400 if form.is_bound else 200
    context = {"form": form, "contact": contact, "name": name, "contact_page": CONTACT_PAGE}
    return render(request, "crm/contacts/edit.html", context, status=status)


@login_required
@require_POST
def contact_status(request, pk: int):
    contact = contact_to_change(request.user, pk)
    form = StatusForm(request.POST)
    problem = ""
    if form.is_valid():
        data = form.cleaned_data
        try:
            change_status(contact, data["to"], data["reason"], request.user, timezone.now())
        except NotAllowed as exc:
            problem = f"Not changed: {exc}."
        else:
            messages.success(request, f"Contact “{contact}” is now {contact.get_status_display()}.")
            return redirect(CONTACT_PAGE, pk=contact.pk)
    # The form again, with what was typed and one line per problem.
    context = {
        "contact": contact,
        "status_form": form,
        "problem": problem,
        "history": history_of(contact),
        "may_change": True,
        "contact_page": CONTACT_PAGE,
    }
    status = 200 if request.htmx else 400  # htmx swaps only a successful response
    return render(request, "crm/contacts/status.html", context, status=status)
