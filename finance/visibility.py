"""Who sees which invoices: one rule for the invoice pages, the CSV export and the admin.

The finance role and administrators see every invoice (finance watches payments across
teams, not one team's sales); everyone else sees the invoices of their team's accounts, the
sales rule of crm.visibility, so an account manager sees their accounts' invoices."""

from django.db.models import QuerySet

from crm.models import User
from crm.visibility import visible_to
from finance.models import AgingDay, Invoice

# The path from each finance model to the team its rows belong to, for the sales rule.
# An invoice carries its account's team, copied by the database (finance/triggers.py).
INVOICE_TEAM = ("team",)
PAYMENT_TEAM = ("invoice__team",)


def sees_every_invoice(user: User) -> bool:
    return user.is_administrator or user.role == User.Role.FINANCE


def may_record_payments(user: User) -> bool:
    """Recording a payment changes what a client owes: finance and administrators only."""
    return sees_every_invoice(user)


def invoices_visible_to(user: User, queryset: QuerySet[Invoice] | None = None) -> QuerySet:
    """`queryset` (by default every invoice) narrowed to what `user` may see."""
    invoices = Invoice.objects.all() if queryset is None else queryset
    return finance_rows_visible_to(user, invoices, INVOICE_TEAM)


def finance_rows_visible_to(user: User, queryset: QuerySet, team_paths: tuple[str, ...]):
    """Any finance row (an invoice, a payment, a ledger row, a policy) by the invoice rule:
    all of them for finance and administrators, their team's for everyone else."""
    if sees_every_invoice(user):
        return queryset
    return visible_to(user, queryset, team_paths)


def aging_days_visible_to(user: User, queryset: QuerySet[AgingDay]) -> QuerySet[AgingDay]:
    """The aging rollup's rows of the invoices `user` may see, by the same rule: every team's
    for finance and administrators, their own team's for everyone else."""
    if sees_every_invoice(user):
        return queryset
    if user.team_id is None:
        return queryset.none()
    return queryset.filter(team_key=user.team_id)
