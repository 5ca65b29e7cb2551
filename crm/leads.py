"""Leads (RPH) for reps, managers and administrators: the list, creating and editing a lead,
moving it through its statuses (each move audited), and converting it into an account, a
contact and an opportunity.

The lead's own page shows its nurture sequence too, so it lives with nurture (nurture/views.py,
URL name `nurture:rph`) and uses the forms and services here: crm imports no other app."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from crm import paging
from crm.countries import countries
from crm.forms import ModelChoiceField, TimeZoneField, TimeZoneInput
from crm.matching import Search
from crm.models import RPH, Account, Contact, LeadStatusChange, Opportunity, User
from crm.visibility import may_change, mine, visible_to

LEAD_PAGE = "nurture:rph"  # the lead's page, named rather than imported
PAGE_SIZE = paging.PAGE_SIZE
COUNT_CAP = paging.COUNT_CAP


class NotAllowed(Exception):
    """A status move or conversion the lead's current status does not allow."""


# --- Services ----------------------------------------------------------------------------------


def move_status(rph: RPH, to: str, by: User, now: datetime) -> LeadStatusChange:
    """Move the lead to `to` and record who did, when, from what. A conditional UPDATE, so two
    people moving the same lead at once cannot both succeed from the same status. The nurture
    trigger on crm_rph enrols the lead on entering Nurture P2 and stops its enrollment on
    leaving it."""
    if to not in RPH.MOVES.get(rph.status, ()):
        raise NotAllowed(
            f"a lead in {rph.get_status_display()} cannot move to "
            f"{RPH.Status(to).label if to in RPH.Status.values else to}"
        )
    with transaction.atomic():
        return _record_move(rph, to, by, now)


def _record_move(rph: RPH, to: str, by: User, now: datetime) -> LeadStatusChange:
    moved = RPH.objects.filter(pk=rph.pk, status=rph.status).update(
        status=to, status_changed_at=now, last_activity_at=now
    )
    if moved != 1:
        raise NotAllowed("someone else changed its status meanwhile; reload the page")
    change = LeadStatusChange.objects.create(
        rph=rph, by=by, at=now, from_status=rph.status, to_status=to
    )
    rph.status, rph.status_changed_at, rph.last_activity_at = to, now, now
    return change


def create_lead(form: "LeadForm", by: User, now: datetime) -> RPH:
    rph = form.save(commit=False)
    if rph.owner_id is None:
        rph.owner = by
    rph.status_changed_at = rph.last_activity_at = now
    rph.save()
    return rph


def update_lead(form: "LeadForm", now: datetime) -> RPH:
    rph = form.save(commit=False)
    rph.last_activity_at = now
    rph.save(update_fields=[*form.changed_data, "last_activity_at"])
    return rph


@dataclass(frozen=True)
class Converted:
    account: Account
    contact: Contact
    opportunity: Opportunity


def convert_lead(rph: RPH, form: "ConvertForm", by: User, now: datetime) -> Converted:
    """The lead becomes an account (its company), a contact (the lead) and an opportunity,
    all or nothing; its status moves to Converted, audited like any move. A lead that is a
    contact already keeps that contact and its account."""
    if rph.status == RPH.Status.CONVERTED:
        raise NotAllowed("this lead is already converted")
    data = form.cleaned_data
    owner = rph.owner or by
    with transaction.atomic():
        if rph.contact_id:  # a lead that already is a contact keeps it, and its account
            contact = Contact.objects.select_related("account").get(pk=rph.contact_id)
            account = contact.account
        else:
            account = Account.objects.create(
                name=data["account_name"], account_manager=owner, team_id=owner.team_id
            )
            contact = Contact.objects.create(account=account, name=rph.name, email=rph.email)
        opportunity = Opportunity.objects.create(
            account=account,
            name=data["opportunity_name"],
            owner=owner,
            amount=data["amount"],
            expected_close=data["expected_close"],
        )
        RPH.objects.filter(pk=rph.pk).update(contact=contact)
        rph.contact = contact
        _record_move(rph, RPH.Status.CONVERTED, by, now)
    return Converted(account, contact, opportunity)


# --- Selectors ---------------------------------------------------------------------------------


def owners_for(user: User) -> QuerySet[User]:
    """Whom `user` may give a lead to: themselves for a rep; their team for a manager; anyone
    for an administrator."""
    people = User.objects.filter(is_active=True).order_by("first_name", "last_name", "pk")
    if user.is_administrator:
        return people
    if user.role == User.Role.MANAGER:
        return visible_to(user, people)
    return people.filter(pk=user.pk)


def history_of(rph: RPH) -> list[LeadStatusChange]:
    changes = rph.status_changes.select_related("by").order_by("-at", "-pk")
    return list(changes[:100])


# --- Forms -------------------------------------------------------------------------------------


class OneLineErrors:
    """A form's errors as one line per field, for the top of the page."""

    def error_lines(self) -> list[str]:
        form: forms.BaseForm = self  # type: ignore[assignment]
        lines = []
        for name, errors in form.errors.items():
            label = form[name].label if name in form.fields else ""
            text = " ".join(str(error) for error in errors)
            lines.append(f"{label}: {text}" if label else text)
        return lines


def country_select(blank: str) -> forms.Select:
    """ISO 3166 countries by name, the code kept: what a lead's or account's country is."""
    named = sorted(countries().items(), key=lambda item: item[1])
    choices = [(code, f"{name} ({code})") for code, name in named]
    return forms.Select(choices=[("", blank), *choices])


class LeadForm(OneLineErrors, forms.ModelForm):
    class Meta:
        model = RPH
        fields = ["name", "company", "email", "source", "time_zone", "country", "owner"]
        field_classes = {"time_zone": TimeZoneField}

    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = [("", "Unknown"), *RPH.Source.choices]  # type: ignore[attr-defined]
        # Where the lead is: its nurture emails go out in its working day (nurture.places).
        self.fields["time_zone"].widget = TimeZoneInput("Its country's")
        self.fields["country"].widget = country_select("Its account's")
        owner = self.fields["owner"]
        owner.queryset = owners_for(user)  # type: ignore[attr-defined]
        # A new lead is the creator's unless given to someone; a lead keeps an owner.
        owner.required = self.instance.pk is not None
        owner.empty_label = None if owner.required else "Me"  # type: ignore[attr-defined]
        owner.help_text = ""
        if not user.is_administrator and user.role != User.Role.MANAGER:
            del self.fields["owner"]  # a rep's leads are theirs; nobody else gives them away


ACTIVITY_CHOICES = [
    ("", "Any time"),
    ("7", "In the last 7 days"),
    ("30", "In the last 30 days"),
    ("-30", "Not in 30 days"),
    ("-90", "Not in 90 days"),
]
SORTS = {
    "-activity": ("-last_activity_at", "-pk"),
    "activity": ("last_activity_at", "pk"),
    "name": ("name", "pk"),
    "-name": ("-name", "-pk"),
    "status": ("status", "-last_activity_at", "-pk"),
}


class LeadFilterForm(OneLineErrors, paging.Filters, forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *RPH.Status.choices])
    source = forms.ChoiceField(required=False, choices=[("", "Any source"), *RPH.Source.choices])
    activity = forms.ChoiceField(label="Last activity", required=False, choices=ACTIVITY_CHOICES)
    owner = ModelChoiceField(required=False, queryset=User.objects.none(), empty_label="Everyone")
    sort = forms.ChoiceField(
        required=False,
        choices=[
            ("-activity", "Latest activity"),
            ("activity", "Oldest activity"),
            ("name", "Name A–Z"),
            ("-name", "Name Z–A"),
            ("status", "Status"),
        ],
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=COUNT_CAP)

    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if user.role == User.Role.REP and not user.is_administrator:
            del self.fields["owner"]
        else:
            self.fields["owner"].queryset = owners_for(user)  # type: ignore[attr-defined]


def leads_for_list(user: User, form: LeadFilterForm, now: datetime) -> QuerySet[RPH]:
    """The leads `user` may see, filtered (all but the search: search_of) and ordered as the
    list's form says."""
    leads = mine(user, RPH.objects.all())
    for name in ("status", "source"):
        if form.value(name):
            leads = leads.filter(**{name: form.value(name)})
    if form.value("owner"):
        leads = leads.filter(owner=form.value("owner"))
    if activity := form.value("activity"):
        leads = _activity_filter(leads, int(activity), now)
    return leads.order_by(*SORTS[form.value("sort") or "-activity"])


@dataclass(frozen=True, slots=True)
class LeadRow:
    """A lead as the list shows it, read as values (crm.paging.rows_as)."""

    pk: int
    name: str
    company: str
    email: str
    status: str
    source: str
    last_activity_at: datetime
    owner: str  # their name, "" for none

    def get_status_display(self) -> str:
        return LEAD_STATUSES.get(self.status, self.status)

    def get_source_display(self) -> str:
        return LEAD_SOURCES.get(self.source, self.source)


LEAD_STATUSES, LEAD_SOURCES = dict(RPH.Status.choices), dict(RPH.Source.choices)
LEAD_COLUMNS = ("pk", "name", "company", "email", "status", "source", "last_activity_at")


def lead_rows(leads: QuerySet[RPH]) -> list[LeadRow]:
    return paging.rows_as(LeadRow, leads, LEAD_COLUMNS, "owner")


# A lead's walk reads its rows from the table (but a team's: crm 0027 holds name, company and
# email for a manager's list): half the contacts' and accounts' walk
# (crm.matching.WALK_PER_ROW), which read an index alone.
WALK = 100


def search_of(form: LeadFilterForm) -> Search:
    """The list's search box: name, company or email. The latest activity first (or last) is
    walked for the first matches: each role's leads are held in that order by an index (the
    owner's, the team's, everyone's). Other orders, and a status, source or activity filter,
    have no such index: PostgreSQL's own plan reads them (crm.matching)."""
    walked = (form.value("sort") or "-activity") in ("-activity", "activity") and not any(
        form.value(name) for name in ("status", "source", "activity")
    )
    return form.search(("name", "company", "email"), walk=WALK if walked else 0)


def _activity_filter(leads: QuerySet[RPH], days: int, now: datetime) -> QuerySet[RPH]:
    """Active in the last `days` days; for a negative number, not in that many days."""
    since = now - timedelta(days=abs(days))
    if days > 0:
        return leads.filter(last_activity_at__gte=since)
    return leads.filter(last_activity_at__lt=since)


# --- Views -------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET"])
def lead_list(request):
    form = LeadFilterForm(request.GET, user=request.user)
    form.is_valid()  # the valid parameters apply; the others are named above the list
    leads = leads_for_list(request.user, form, timezone.now())
    listed = paging.listed(
        leads, form.value("page") or 1, PAGE_SIZE, search=search_of(form), read=lead_rows
    )
    context = {
        "form": form,
        **listed.context(),
        "query": _without_page(request.GET),
        "problems": form.error_lines(),
    }
    return paging.list_response(request, "crm/leads/list.html", "crm/leads/_rows.html", context)


def _without_page(params) -> str:
    params = params.copy()
    params.pop("page", None)
    return params.urlencode()


@login_required
@require_http_methods(["GET", "POST"])
def lead_create(request):
    form = LeadForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        rph = create_lead(form, request.user, timezone.now())
        messages.success(request, f"Lead “{rph}” created.")
        return redirect(LEAD_PAGE, pk=rph.pk)
    status = 400 if form.is_bound else 200
    return render(request, "crm/leads/new.html", {"form": form}, status=status)


class ConvertForm(OneLineErrors, forms.Form):
    account_name = forms.CharField(label="Account", max_length=200)
    opportunity_name = forms.CharField(label="Opportunity", max_length=200)
    amount = forms.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal(0), initial=Decimal(0)
    )
    expected_close = forms.DateField(
        label="Expected close", widget=forms.DateInput(attrs={"type": "date"})
    )

    @classmethod
    def for_lead(cls, rph: RPH, today: date, data=None) -> "ConvertForm":
        company = rph.company or rph.name
        initial = {
            "account_name": company,
            "opportunity_name": f"{company}: first deal",
            "expected_close": today + timedelta(days=30),
        }
        return cls(data, initial=initial)


def lead_to_change(user: User, pk: int) -> RPH:
    """The lead, if `user` may see it and act on it."""
    rph = get_object_or_404(visible_to(user, RPH.objects.select_related("owner")), pk=pk)
    if not may_change(user, rph):
        raise PermissionDenied
    return rph


@login_required
@require_http_methods(["GET", "POST"])
def lead_convert(request, pk: int):
    rph = lead_to_change(request.user, pk)
    form = ConvertForm.for_lead(rph, timezone.localdate(), request.POST or None)
    problem = ""
    if request.method == "POST" and form.is_valid():
        try:
            made = convert_lead(rph, form, request.user, timezone.now())
        except NotAllowed as exc:
            problem = f"Not converted: {exc}."
        else:
            messages.success(
                request,
                f"Lead “{rph}” converted: account “{made.account}”, "
                f"opportunity “{made.opportunity}”.",
            )
            return redirect(reverse("opportunity_detail", args=[made.opportunity.pk]))
    status = 400 if form.is_bound else 200
    context = {"rph": rph, "form": form, "problem": problem, "lead_url": LEAD_PAGE}
    return render(request, "crm/leads/convert.html", context, status=status)
