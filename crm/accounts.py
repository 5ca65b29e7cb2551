"""Accounts for reps, managers and administrators: the list ("Accounts" in the navigation),
creating and editing an account, and the one rule for who may do so.

The account's own page gathers what other apps hold about it (PARC agreements, invoices,
emails), so it lives with PARC (parc/views.py, URL name `parc:account`) and uses the rule
here: crm imports no other app."""

from dataclasses import dataclass
from datetime import datetime

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, transaction
from django.db.models import Model, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from crm import paging
from crm.forms import ModelChoiceField
from crm.leads import OneLineErrors, country_select, owners_for
from crm.matching import WALK_PER_ROW, Search
from crm.models import Account, Team, User
from crm.visibility import visible_to

ACCOUNT_PAGE = "parc:account"  # the account's page, named rather than imported
PAGE_SIZE = paging.PAGE_SIZE
COUNT_CAP = paging.COUNT_CAP


# --- Who may do what ---------------------------------------------------------------------------


def sells(user: User) -> bool:
    """Whether `user` works on sales records at all: reps, managers and administrators. The
    one rule every sales form and its buttons follow (accounts, contacts, opportunities, tasks
    and events); finance users look but do not touch."""
    return user.is_administrator or user.role in (User.Role.REP, User.Role.MANAGER)


def may_create_account(user: User) -> bool:
    """Reps (the account becomes theirs), managers and administrators."""
    return sells(user)


def may_change_account(user: User, account: Account) -> bool:
    """Whether `user` may edit an account they can see: its account manager, a manager of its
    team, or an administrator; never someone who does not sell (sells)."""
    if user.is_administrator:
        return True
    if not sells(user):
        return False
    if user.pk == account.account_manager_id:
        return True
    return (
        user.role == User.Role.MANAGER
        and user.team_id is not None
        and user.team_id == account.team_id
    )


def account_to_change(user: User, pk: int) -> Account:
    """The account, if `user` may see it and edit it."""
    account = get_object_or_404(visible_to(user, Account.objects.all()), pk=pk)
    if not may_change_account(user, account):
        raise PermissionDenied
    return account


def assigns_only_self(user: User) -> bool:
    """Someone who may give an account or a record to nobody but themselves: a rep (and
    finance). Managers give them to their team, administrators to anyone (leads.owners_for)."""
    return not user.is_administrator and user.role != User.Role.MANAGER


def save_edit(obj: Model, fields: list[str]) -> None:
    """Save an edited record's `fields`; one deleted meanwhile is a 404 ("no such record"), not
    an error page, and is not written back."""
    try:
        with transaction.atomic():  # a savepoint: the request's transaction stays usable
            obj.save(update_fields=fields)
    except DatabaseError:
        if type(obj)._default_manager.filter(pk=obj.pk).exists():
            raise
        raise Http404(f"This {obj._meta.verbose_name} was deleted meanwhile.") from None


def saved_fields(form: forms.ModelForm, *also: str) -> list[str]:
    """The columns an edit through `form` writes: the form's own fields, `also` (set by the
    service) and those the model stamps (auto_now). The others stay as stored, so a change
    committed meanwhile (a contact's status, an account's team) is not undone by a whole-row
    save of what the form loaded."""
    model = form._meta.model
    stamped = [f.name for f in model._meta.concrete_fields if getattr(f, "auto_now", False)]
    return list(dict.fromkeys([*form.fields, *also, *stamped]))


# --- Services ----------------------------------------------------------------------------------


def save_account(form: "AccountForm", by: User) -> Account:
    """Create or edit an account. A rep's new account is theirs. A non-administrator's account
    belongs to its account manager's team, so it stays where its manager can see it; an
    administrator may name another team (none named: the manager's)."""
    account = form.save(commit=False)
    also = []  # what the service sets besides the form's fields
    if account.account_manager_id is None and not by.is_administrator:
        account.account_manager = by  # a rep, who is given no choice
        also.append("account_manager")
    manager = account.account_manager
    if by.is_administrator:
        if account.team_id is None and manager is not None:
            account.team_id = manager.team_id
            also.append("team")
    elif account.pk is None or "account_manager" in form.changed_data:
        account.team_id = manager.team_id if manager else by.team_id
        also.append("team")
    if account.pk is None:
        account.save()
    else:
        save_edit(account, saved_fields(form, *also))
    return account


# --- Forms -------------------------------------------------------------------------------------


class AccountForm(OneLineErrors, forms.ModelForm):
    class Meta:
        model = Account
        fields = ["name", "country", "account_manager", "team"]

    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Its contacts' leads are emailed in this country's working day (nurture.places).
        self.fields["country"].widget = country_select("Unknown")
        manager = self.fields["account_manager"]
        choices = owners_for(user)
        if self.instance.account_manager_id:  # an account keeps its manager, whoever it is
            choices = choices | User.objects.filter(pk=self.instance.account_manager_id)
        manager.queryset = choices.distinct()  # type: ignore[attr-defined]
        manager.label = "Account manager"
        manager.help_text = ""
        if self.instance.pk is None:
            self.initial.setdefault("account_manager", user.pk)
        if user.is_administrator:
            team = self.fields["team"]
            team.queryset = Team.objects.order_by("name")  # type: ignore[attr-defined]
            team.empty_label = "The account manager's"  # type: ignore[attr-defined]
            team.help_text = ""
        else:
            del self.fields["team"]  # the account manager's team
            manager.required = True
            if assigns_only_self(user):
                del self.fields["account_manager"]  # a rep's accounts are theirs
                return
        # Read once: a required select reads its first choice again to render `required`
        # (and list() would count them first).
        manager.widget.choices = [choice for choice in manager.choices]  # type: ignore[attr-defined]


# --- The list ----------------------------------------------------------------------------------

SORTS = {
    "name": ("name", "pk"),
    "-name": ("-name", "-pk"),
    "-created": ("-created_at", "-pk"),
    "created": ("created_at", "pk"),
}


class AccountFilterForm(OneLineErrors, paging.Filters, forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)
    manager = ModelChoiceField(
        label="Account manager", required=False, queryset=User.objects.none(), empty_label="Anyone"
    )
    team = ModelChoiceField(required=False, queryset=Team.objects.none(), empty_label="Every team")
    sort = forms.ChoiceField(
        required=False,
        choices=[
            ("name", "Name A–Z"),
            ("-name", "Name Z–A"),
            ("-created", "Newest"),
            ("created", "Oldest"),
        ],
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=COUNT_CAP)

    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if assigns_only_self(user):
            del self.fields["manager"]
        else:
            self.fields["manager"].queryset = owners_for(user)  # type: ignore[attr-defined]
        if user.is_administrator:
            self.fields["team"].queryset = Team.objects.order_by("name")  # type: ignore[attr-defined]
        else:
            del self.fields["team"]


def accounts_for_list(user: User, form: AccountFilterForm) -> QuerySet[Account]:
    """The accounts `user` may see, filtered (all but the search: search_of) and ordered as
    the list's form says."""
    accounts = visible_to(user, Account.objects.all())
    if form.value("manager"):
        accounts = accounts.filter(account_manager=form.value("manager"))
    if form.value("team"):
        accounts = accounts.filter(team=form.value("team"))
    return accounts.order_by(*SORTS[form.value("sort") or "name"])


@dataclass(frozen=True, slots=True)
class AccountRow:
    """An account as the list shows it, read as values (crm.paging.rows_as)."""

    pk: int
    name: str
    team: str | None
    created_at: datetime
    account_manager: str  # their name, "" for none


def account_rows(accounts: QuerySet[Account]) -> list[AccountRow]:
    columns = ("pk", "name", "team__name", "created_at")
    return paging.rows_as(AccountRow, accounts, columns, "account_manager")


def search_of(form: AccountFilterForm) -> Search:
    """The list's search box: the name (UPPER(name) LIKE: the trigram index of crm 0007).
    Every order has an index (a team's and everyone's) to walk for the first matches, and an
    account manager's accounts by name too; by date they have none: PostgreSQL's own plan
    reads them (crm.matching)."""
    by_date = (form.value("sort") or "name").endswith("created")
    walked = not (form.value("manager") and by_date)
    return form.search(("name",), walk=WALK_PER_ROW if walked else 0)


# --- Views -------------------------------------------------------------------------------------


@login_required
@require_GET
def account_list(request):
    form = AccountFilterForm(request.GET, user=request.user)
    form.is_valid()  # the valid parameters apply; the others are named above the list
    accounts = accounts_for_list(request.user, form)
    listed = paging.listed(
        accounts, form.value("page") or 1, PAGE_SIZE, search=search_of(form), read=account_rows
    )
    context = {
        "form": form,
        **listed.context(),
        "query": _without_page(request.GET),
        "problems": form.error_lines(),
        "may_create": may_create_account(request.user),
        "account_page": ACCOUNT_PAGE,
    }
    return paging.list_response(
        request, "crm/accounts/list.html", "crm/accounts/_rows.html", context
    )


def _without_page(params) -> str:
    params = params.copy()
    params.pop("page", None)
    return params.urlencode()


@login_required
@require_http_methods(["GET", "POST"])
def account_create(request):
    if not may_create_account(request.user):
        raise PermissionDenied
    form = AccountForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        account = save_account(form, request.user)
        messages.success(request, f"Account “{account}” created.")
        return redirect(ACCOUNT_PAGE, pk=account.pk)
    status = 400 if form.is_bound else 200
    return render(request, "crm/accounts/form.html", {"form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def account_edit(request, pk: int):
    account = account_to_change(request.user, pk)
    stored_name = account.name  # the form writes what was typed onto the instance
    form = AccountForm(request.POST or None, instance=account, user=request.user)
    if request.method == "POST" and form.is_valid():
        account = save_account(form, request.user)
        messages.success(request, f"Account “{account}” saved.")
        return redirect(ACCOUNT_PAGE, pk=account.pk)
    status = 400 if form.is_bound else 200
    context = {"form": form, "account": account, "name": stored_name, "account_page": ACCOUNT_PAGE}
    return render(request, "crm/accounts/form.html", context, status=status)
