"""The objects notifications can be about, described once: which are still open, what date
counts, whose they are, what they are called and where their page is. The daily job, the
closing sweep, the blocking gate and the dashboard all read these descriptions."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import (
    DateTimeField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
)
from django.db.models.expressions import Combinable
from django.db.models.functions import Cast

from crm.models import Dispatch, Event, Opportunity, Task
from finance import selectors as invoices
from notifications.models import ObjectKind


@dataclass(frozen=True)
class ObjectType:
    kind: str
    label: str
    open: Callable[[datetime], QuerySet]  # the objects still needing attention at a moment
    date_field: str  # the field whose date counts
    date_only: bool  # a calendar date rather than a moment
    expires_at: Combinable  # that date as a datetime
    name: Combinable  # what the object is called
    status_field: str | None  # what a rule's `statuses` filter on
    url_names: tuple[str, ...]  # its page first, then the actions that deal with it
    owner: str = "owner_id"  # path to the owning user's id
    manager: str = "owner__manager_id"
    account_manager: str = "account__account_manager_id"
    team_paths: tuple[str, ...] = ("owner__team",)  # the team(s) whose members may see it


def _as_datetime(field: str) -> Combinable:
    return Cast(F(field), output_field=DateTimeField())


TYPES: dict[str, ObjectType] = {
    ObjectKind.TASK: ObjectType(
        kind=ObjectKind.TASK,
        label="Task",
        open=lambda now: Task.objects.filter(status=Task.Status.OPEN),
        date_field="due_at",
        date_only=False,
        expires_at=F("due_at"),
        name=F("title"),
        status_field="status",
        url_names=("task_detail", "task_complete", "task_edit"),
    ),
    ObjectKind.OPPORTUNITY: ObjectType(
        kind=ObjectKind.OPPORTUNITY,
        label="Opportunity",
        open=lambda now: Opportunity.objects.filter(stage__in=Opportunity.OPEN_STAGES),
        date_field="expected_close",
        date_only=True,
        expires_at=_as_datetime("expected_close"),
        name=F("name"),
        status_field="stage",
        url_names=("opportunity_detail", "opportunity_update", "opportunity_edit"),
    ),
    ObjectKind.EVENT: ObjectType(
        kind=ObjectKind.EVENT,
        label="Event",
        open=lambda now: Event.objects.filter(end_at__gte=now),
        date_field="start_at",
        date_only=False,
        expires_at=F("start_at"),
        name=F("title"),
        status_field=None,
        url_names=("event_detail", "event_edit"),
    ),
    ObjectKind.INVOICE: ObjectType(
        kind=ObjectKind.INVOICE,
        label="Invoice",
        open=lambda now: invoices.unpaid(),
        date_field="due_date",
        date_only=True,
        expires_at=_as_datetime("due_date"),
        name=F("number"),
        owner="account__account_manager_id",
        manager="account__account_manager__manager_id",
        status_field=None,
        url_names=("invoice_detail", "invoice_payment"),
        team_paths=("account__team",),
    ),
    ObjectKind.DISPATCH: ObjectType(
        kind=ObjectKind.DISPATCH,
        label="Dispatch",
        open=lambda now: Dispatch.objects.filter(status__in=Dispatch.OPEN_STATUSES),
        date_field="due_at",
        date_only=False,
        expires_at=F("due_at"),
        name=F("title"),
        status_field="status",
        url_names=("dispatch_detail",),
        team_paths=("team", "account__team"),
    ),
}


def still_open(now: datetime) -> Q:
    """Matches notifications whose object exists and still needs attention: only those may
    block anyone, so a bug or a stale row can never lock a user out."""
    condition = Q()
    for kind, object_type in TYPES.items():
        exists = Exists(object_type.open(now).filter(pk=OuterRef("object_id")))
        condition |= Q(exists, object_kind=kind)
    return condition
