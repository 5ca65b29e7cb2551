"""Creating and editing opportunities, tasks and events from the CRM pages (an account's page
offers each with `?account=<pk>`). Their choices of account and owner are what the user may
see and assign; their owners and managers may edit them (crm.visibility.may_change),
administrators all; a rep's new record is theirs. Times are typed and shown in the user's
time zone (crm.middleware.UserTimeZone makes it the current one)."""

import re
from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.validators import MinValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from crm.accounts import assigns_only_self, save_edit, saved_fields, sells
from crm.dates import within_years
from crm.leads import OneLineErrors, owners_for
from crm.models import Account, Event, Opportunity, Task, User
from crm.signals import object_changed
from crm.visibility import may_change, visible_to

# How many accounts a form's select lists: a team may see thousands. The others are picked
# from their own page ("New task" there fills in the account).
ACCOUNT_CHOICES = 200
MOMENT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
DAY = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
ID = re.compile(r"[1-9][0-9]{0,17}")  # within a bigint, ASCII digits only


def an_id(value) -> int | None:
    """A primary key typed in a URL or a form, or None for anything else (a 10,000-digit
    number included)."""
    text = str(value or "")
    return int(text) if ID.fullmatch(text) else None


# --- Forms -------------------------------------------------------------------------------------


class RecordForm(OneLineErrors, forms.ModelForm):
    """A sales record's form: the account among those the user may see, the owner among
    those they may assign (none to choose for a rep: their own)."""

    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.accounts_cut = 0  # how many the select lists, when there are more
        self._limit_accounts(user)
        self._limit_owners(user)
        for field in self.fields.values():
            if isinstance(field, forms.DateTimeField):
                field.validators.append(within_years)

    def _limit_accounts(self, user: User) -> None:
        field = self.fields["account"]
        kept = [self.instance.account_id, self.initial.get("account"), self.data.get("account")]
        kept_pks = [pk for pk in map(an_id, kept) if pk is not None]
        accounts = visible_to(user, Account.objects.all())
        if self.instance.account_id:  # a record keeps its account, wherever it is
            accounts = Account.objects.filter(
                Q(pk__in=accounts.values("pk")) | Q(pk=self.instance.account_id)
            )
        field.queryset = accounts  # type: ignore[attr-defined]
        listed = list(accounts.order_by("name", "pk").values_list("pk", "name")[:ACCOUNT_CHOICES])
        self.accounts_cut = ACCOUNT_CHOICES if len(listed) == ACCOUNT_CHOICES else 0
        shown = {pk for pk, _ in listed}
        if missing := [pk for pk in kept_pks if pk not in shown]:
            listed += accounts.filter(pk__in=missing).values_list("pk", "name")
        listed.sort(key=lambda row: (row[1], row[0]))
        empty = [] if field.required else [("", "—")]
        field.widget.choices = empty + listed

    def _limit_owners(self, user: User) -> None:
        if assigns_only_self(user):
            del self.fields["owner"]  # a rep's records are theirs
            return
        field = self.fields["owner"]
        owners = owners_for(user)
        if self.instance.owner_id:  # a record keeps its owner, whoever it is
            owners = owners | User.objects.filter(pk=self.instance.owner_id)
        field.queryset = owners.distinct()  # type: ignore[attr-defined]
        # A new record is the creator's unless given to someone.
        field.required = self.instance.pk is not None
        field.empty_label = None if field.required else "Me"  # type: ignore[attr-defined]
        # Read once: a required select reads its first choice again to render `required`
        # (and list() would count them first).
        field.widget.choices = [choice for choice in field.choices]  # type: ignore[attr-defined]


class OpportunityForm(RecordForm):
    class Meta:
        model = Opportunity
        fields = ["name", "account", "owner", "stage", "amount", "expected_close"]
        widgets = {"expected_close": DAY}
        labels = {"expected_close": "Expected close"}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        amount = self.fields["amount"]
        amount.validators.append(MinValueValidator(Decimal(0), "An amount cannot be negative."))
        amount.widget.attrs["min"] = "0"


class TaskForm(RecordForm):
    class Meta:
        model = Task
        fields = ["title", "kind", "account", "owner", "due_at"]
        widgets = {"due_at": MOMENT}
        labels = {"due_at": "Due"}


class EventForm(RecordForm):
    class Meta:
        model = Event
        fields = ["title", "account", "owner", "start_at", "end_at"]
        widgets = {"start_at": MOMENT, "end_at": MOMENT}
        labels = {"start_at": "Starts", "end_at": "Ends"}

    def clean(self):
        data = super().clean() or {}
        start, end = data.get("start_at"), data.get("end_at")
        if start and end and end <= start:
            self.add_error("end_at", "An event ends after it starts.")
        return data


# --- Kinds -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    name: str  # as notifications and object pages call it
    label: str
    model: type[models.Model]
    form: type[RecordForm]
    page: str  # URL name of its page

    @property
    def create_url(self) -> str:
        return f"{self.name}_create"

    @property
    def edit_url(self) -> str:
        return f"{self.name}_edit"


OPPORTUNITY = Kind("opportunity", "opportunity", Opportunity, OpportunityForm, "opportunity_detail")
TASK = Kind("task", "task", Task, TaskForm, "task_detail")
EVENT = Kind("event", "event", Event, EventForm, "event_detail")


# --- Services ----------------------------------------------------------------------------------


def save_record(form: RecordForm, kind: Kind, by: User, now) -> models.Model:
    """Create or edit a record. A record with no owner given is its creator's. An edit tells
    the rest of Vigil (object_changed), as every change a user makes does: a reminder about
    the old due date is no longer true. An edit writes the form's fields only."""
    record = form.save(commit=False)
    if record.pk is None:
        if record.owner_id is None:
            record.owner = by
        record.save()
        return record
    with transaction.atomic():
        # The form's fields only: what changed meanwhile elsewhere stays (a task completed).
        save_edit(record, saved_fields(form))
        object_changed.send(sender=None, kind=kind.name, object_id=record.pk, actor=by, at=now)
    return record


# --- Views -------------------------------------------------------------------------------------


def may_edit(user: User, record: models.Model) -> bool:
    """Whether `user` may edit an opportunity, task or event they can see through its form:
    one who sells (crm.accounts.sells) and may change it (its owner, a manager, an
    administrator). The object pages show "Edit" by the same rule."""
    return sells(user) and may_change(user, record)


def _create(request, kind: Kind):
    if not sells(request.user):
        raise PermissionDenied
    initial = {}
    if account := an_id(request.GET.get("account")):
        initial["account"] = account
    form = kind.form(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        record = save_record(form, kind, request.user, timezone.now())
        messages.success(request, f"{kind.label.capitalize()} “{record}” created.")
        return redirect(kind.page, pk=record.pk)
    return _form_page(request, kind, form)


def _edit(request, kind: Kind, pk: int):
    record = get_object_or_404(visible_to(request.user, kind.model._default_manager.all()), pk=pk)
    if not may_edit(request.user, record):
        raise PermissionDenied
    name = str(record)  # the form writes what was typed onto the instance
    form = kind.form(request.POST or None, instance=record, user=request.user)
    if request.method == "POST" and form.is_valid():
        save_record(form, kind, request.user, timezone.now())
        messages.success(request, f"{kind.label.capitalize()} “{record}” saved.")
        return redirect(kind.page, pk=record.pk)
    return _form_page(request, kind, form, record, name)


def _form_page(request, kind: Kind, form: RecordForm, record=None, name: str = ""):
    context = {"kind": kind, "form": form, "record": record, "name": name}
    status = 400 if form.is_bound else 200
    return render(request, "crm/records/form.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def opportunity_create(request):
    return _create(request, OPPORTUNITY)


@login_required
@require_http_methods(["GET", "POST"])
def opportunity_edit(request, pk: int):
    return _edit(request, OPPORTUNITY, pk)


@login_required
@require_http_methods(["GET", "POST"])
def task_create(request):
    return _create(request, TASK)


@login_required
@require_http_methods(["GET", "POST"])
def task_edit(request, pk: int):
    return _edit(request, TASK, pk)


@login_required
@require_http_methods(["GET", "POST"])
def event_create(request):
    return _create(request, EVENT)


@login_required
@require_http_methods(["GET", "POST"])
def event_edit(request, pk: int):
    return _edit(request, EVENT, pk)
