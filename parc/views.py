"""PARC pages: an account's agreements with the visits generated, and a run's summary."""

from datetime import datetime

from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from crm.models import Account, User
from crm.visibility import visible_to
from mailsync import backlog
from parc.models import Agreement, ParcVisit
from parc.plans import PlanError, next_visits

RECORDS = ("opportunity", "inspection", "follow_up", "dispatch")


@login_required
@require_GET
def account_agreements(request, pk: int):
    account = get_object_or_404(visible_to(request.user, Account.objects.all()), pk=pk)
    visits = ParcVisit.objects.select_related(*RECORDS).order_by("-visit_date")
    agreements = list(
        Agreement.objects.filter(account=account)
        .select_related("visiting_team", "account_manager", "account__account_manager")
        .prefetch_related(Prefetch("visits", queryset=visits))
        .order_by("-active", "first_visit")
    )
    for agreement in agreements:
        try:
            agreement.upcoming, agreement.plan_error = (
                next_visits(agreement.plan, agreement.first_visit, visit_time=agreement.visit_time),
                "",
            )
        except PlanError as exc:
            agreement.upcoming, agreement.plan_error = [], str(exc)
    addresses = backlog.addresses_of(account)  # its contacts' and those linked by hand
    context = {"account": account, "agreements": agreements, "contact_addresses": addresses}
    return render(request, "parc/account.html", context)


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
