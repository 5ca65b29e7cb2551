"""The account page, the one place for an account (its contacts, open opportunities, tasks and
events, dispatches, PARC agreements with their visits, invoices with their penalties, and its
email threads), and a PARC run's summary."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Case, Prefetch, QuerySet, Value, When
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from crm.accounts import may_change_account, sells
from crm.contacts import may_work_on
from crm.models import Account, Dispatch, Event, Opportunity, Task, User
from crm.visibility import visible_to
from finance import selectors as invoices
from finance.currencies import money
from mailsync import backlog
from parc.models import Agreement, ParcVisit
from parc.plans import PlanError, next_visits

RECORDS = ("opportunity", "inspection", "follow_up", "dispatch")
# Rows each section of the account page shows: the page reads as many rows whatever the
# account holds. A section with more says so and links to its full list where one exists.
SECTION = 20


@dataclass
class Section:
    rows: list[Any]
    more: bool  # more than SECTION rows: the first SECTION are shown
    all_url: str = ""  # the full list, filtered to the account, where there is one


def _first(rows: QuerySet, all_url: str = "") -> Section:
    found = list(rows[: SECTION + 1])
    return Section(found[:SECTION], len(found) > SECTION, all_url)


def _url(name: str, account: Account) -> str:
    """A page's URL for this account: a list filtered to it, a form that preselects it."""
    return f"{reverse(name)}?account={account.pk}"


@login_required
@require_GET
def account_page(request, pk: int):
    user = request.user
    accounts = visible_to(user, Account.objects.select_related("account_manager", "team"))
    account = get_object_or_404(accounts, pk=pk)
    now = timezone.now()
    context = {
        "account": account,
        "may_change": may_change_account(user, account),
        "contacts": _first(
            visible_to(user, account.contacts.order_by("name", "pk")), _url("contacts", account)
        ),
        "opportunities": _first(_open_opportunities(user, account)),
        "tasks": _first(_open_tasks(user, account)),
        "events": _first(_upcoming_events(user, account, now)),
        "dispatches": _first(_dispatches(user, account)),
        "agreements": _agreements(account),
        "invoices": _invoices(account),
        "contact_addresses": backlog.addresses_of(account),  # its contacts' and linked ones
        # Only the forms the user may use: finance users look but do not touch.
        "new": {
            kind: _url(f"{kind}_create", account)
            for kind, allowed in [
                ("contact", may_work_on(user, account)),
                ("opportunity", sells(user)),
                ("task", sells(user)),
                ("event", sells(user)),
            ]
            if allowed
        },
    }
    return render(request, "parc/account.html", context)


def _open_opportunities(user: User, account: Account) -> QuerySet[Opportunity]:
    opportunities = Opportunity.objects.filter(account=account, stage__in=Opportunity.OPEN_STAGES)
    return visible_to(user, opportunities.select_related("owner")).order_by("expected_close", "pk")


def _open_tasks(user: User, account: Account) -> QuerySet[Task]:
    tasks = Task.objects.filter(account=account, status=Task.Status.OPEN)
    return visible_to(user, tasks.select_related("owner")).order_by("due_at", "pk")


def _upcoming_events(user: User, account: Account, now: datetime) -> QuerySet[Event]:
    events = Event.objects.filter(account=account, end_at__gte=now)
    return visible_to(user, events.select_related("owner")).order_by("start_at", "pk")


def _dispatches(user: User, account: Account) -> QuerySet[Dispatch]:
    """Open ones first, the soonest due; then the others, the latest first."""
    still_open = Case(When(status__in=Dispatch.OPEN_STATUSES, then=Value(0)), default=Value(1))
    dispatches = Dispatch.objects.filter(account=account).select_related("team", "owner")
    return visible_to(user, dispatches).order_by(still_open, "-scheduled_at", "-pk")


def _invoices(account: Account) -> Section:
    """The account's invoices, owed first, each amount in its currency."""
    shown = _first(invoices.of_account(account), _url("invoices", account))
    for invoice in shown.rows:
        invoice.amount_shown = money(invoice.amount, invoice.currency)
        invoice.debt_shown = money(invoice.debt, invoice.currency)
        invoice.penalty_shown = money(invoice.penalty, invoice.currency)
    return shown


def _agreements(account: Account) -> Section:
    """The account's PARC agreements, each with its latest visits and the first visits of its
    plan. Two queries: the visits of every agreement come in one, SECTION + 1 per agreement."""
    visits = ParcVisit.objects.select_related(*RECORDS).order_by("-visit_date", "-pk")
    agreements = _first(
        Agreement.objects.filter(account=account)
        .select_related("visiting_team", "account_manager", "account__account_manager")
        .prefetch_related(Prefetch("visits", queryset=visits[: SECTION + 1], to_attr="latest"))
        .order_by("-active", "first_visit", "pk")
    )
    for agreement in agreements.rows:
        agreement.more_visits = len(agreement.latest) > SECTION
        agreement.latest = agreement.latest[:SECTION]
        try:
            agreement.upcoming, agreement.plan_error = (
                next_visits(agreement.plan, agreement.first_visit, visit_time=agreement.visit_time),
                "",
            )
        except PlanError as exc:
            agreement.upcoming, agreement.plan_error = [], str(exc)
    return agreements


@require_GET
def account_agreements(request, pk: int):
    """The PARC page of an account, before the account page took it in."""
    return redirect("parc:account", pk=pk, permanent=True)


@login_required
@require_GET
def run_summary(request):
    """The visits one PARC run generated for the signed-in account manager (everyone's, for
    an administrator): where the run's notice leads."""
    try:
        run = datetime.fromisoformat(request.GET.get("run", ""))
    except ValueError:
        raise Http404("No such PARC run.") from None
    visits = ParcVisit.objects.filter(summarized_at=run).select_related(
        "agreement__account", *RECORDS
    )
    if not request.user.is_administrator:
        if request.user.role != User.Role.MANAGER:
            raise Http404("No such PARC run.")
        visits = visits.filter(manager=request.user)
    visits = visits.order_by("agreement__account__name", "visit_date")
    return render(request, "parc/run_summary.html", {"run": run, "visits": list(visits)})
