"""What the weekly PARC run does, step by step: find the due visits, make their four records in
bulk, then tell each account manager what was made for them."""

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import groupby, islice
from operator import itemgetter
from typing import cast

from django.conf import settings
from django.db import connection
from django.db.models import OuterRef, Subquery
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from crm.models import Dispatch, Opportunity, Task, Team, User
from crm.slots import local_instant
from mailsync import outbox
from notifications.services import notify
from parc.models import Agreement, ParcVisit, opportunity_name
from parc.plans import PlanError, visit_dates

log = logging.getLogger(__name__)

BATCH = 2000  # visits per transaction


@dataclass(frozen=True)
class DueVisit:
    agreement: Agreement
    day: date


def due(today: date, until: date) -> tuple[list[DueVisit], dict[str, int]]:
    """Every visit of an active agreement from its last generated one (or its first visit) up
    to `until`; agreements that cannot be generated are counted and logged, not fatal."""
    last = ParcVisit.objects.filter(agreement=OuterRef("pk")).order_by("-visit_date")
    agreements = (
        Agreement.objects.filter(active=True, first_visit__lte=until)
        .select_related("account__account_manager", "account_manager", "visiting_team")
        .annotate(last_visit=Subquery(last.values("visit_date")[:1]))
        .order_by("pk")
    )
    found: list[DueVisit] = []
    counts = {"agreements": 0, "skipped": 0}
    for agreement in agreements.iterator(chunk_size=2000):
        counts["agreements"] += 1
        problem = _problem(agreement)
        end = min(until, agreement.end_date) if agreement.end_date else until
        try:
            days = (
                []
                if problem
                else visit_dates(
                    agreement.plan,
                    agreement.first_visit,
                    agreement.last_visit,
                    end,
                    agreement.visit_time,
                )
            )
        except PlanError as exc:
            problem = f"its plan is refused: {exc}"
        if problem:
            counts["skipped"] += 1
            log.warning("parc_generate: agreement %s skipped: %s", agreement.pk, problem)
            continue
        found.extend(DueVisit(agreement, day) for day in days)
    return found, counts


def _problem(agreement: Agreement) -> str:
    """Why an agreement saved before a rule changed (or edited in the database) cannot run."""
    if agreement.manager is None:
        return "no account manager"
    if agreement.visiting_team.kind != Team.Kind.VISITING:
        return f"{agreement.visiting_team} is not a visiting team"
    return ""


def batches(visits: list[DueVisit]) -> Iterator[list[DueVisit]]:
    it = iter(visits)
    while batch := list(islice(it, BATCH)):
        yield batch


def generate(batch: list[DueVisit], as_of: datetime, today: date) -> dict[str, int]:
    """The visits of one batch and their opportunity, two tasks and dispatch, in bulk: the
    number of queries does not depend on the size of the batch."""
    ParcVisit.objects.bulk_create(
        [
            ParcVisit(
                agreement=v.agreement,
                visit_date=v.day,
                late=v.day < today,
                generated_at=as_of,
                manager=v.agreement.manager,
            )
            for v in batch
        ],
        ignore_conflicts=True,  # made already, by an earlier or a concurrent run
    )
    wanted = {(v.agreement.pk, v.day): v.agreement for v in batch}
    # Rows this run just made, locked; a concurrent run skips them rather than fill them twice.
    pending = [
        visit
        for visit in ParcVisit.objects.select_for_update(skip_locked=True)
        .filter(
            agreement_id__in={pk for pk, _ in wanted},
            generated_at=as_of,
            opportunity=None,
            inspection=None,
            follow_up=None,
            dispatch=None,
        )
        .order_by("pk")
        if (visit.agreement_id, visit.visit_date) in wanted
    ]
    for visit in pending:
        visit.agreement = wanted[visit.agreement_id, visit.visit_date]
    opportunities = Opportunity.objects.bulk_create(_opportunity(v) for v in pending)
    for visit, opportunity in zip(pending, opportunities, strict=True):
        visit.opportunity = opportunity
    tasks = Task.objects.bulk_create(
        task for visit in pending for task in (_inspection(visit), _follow_up(visit))
    )
    dispatches = Dispatch.objects.bulk_create(_dispatch(v) for v in pending)
    for visit, inspection, follow_up, dispatch in zip(
        pending, tasks[::2], tasks[1::2], dispatches, strict=True
    ):
        visit.inspection, visit.follow_up, visit.dispatch = inspection, follow_up, dispatch
    _link_records(pending)
    return {
        "visits": len(pending),
        "late": sum(v.late for v in pending),
        "opportunities": len(opportunities),
        "tasks": len(tasks),
        "dispatches": len(dispatches),
    }


def _link_records(visits: list[ParcVisit]) -> None:
    """Every visit's four foreign keys in one UPDATE … FROM (VALUES …), on PostgreSQL and
    SQLite alike: bulk_update's CASE per row and column grows with the square of the batch."""
    if not visits:
        return
    rows = ", ".join(["(%s, %s, %s, %s, %s)"] * len(visits))
    params = [
        value
        for v in visits
        for value in (v.pk, v.opportunity_id, v.inspection_id, v.follow_up_id, v.dispatch_id)
    ]
    columns = "opportunity_id = d.column2, inspection_id = d.column3, follow_up_id = d.column4"
    sql = (  # placeholders only: the values travel as parameters
        f"UPDATE parc_parcvisit SET {columns}, dispatch_id = d.column5"  # noqa: S608
        f" FROM (VALUES {rows}) AS d WHERE parc_parcvisit.id = d.column1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _at(day: date, moment: time) -> datetime:
    return local_instant(datetime.combine(day, moment), settings.TIME_ZONE)


def add_working_days(day: date, count: int) -> date:
    """`count` working days (Monday to Friday) after `day`."""
    while count > 0:
        day += timedelta(days=1)
        count -= day.weekday() < 5
    return day


def _owner(visit: ParcVisit) -> int:
    # Claimed visits always have one: `due` skips agreements without a manager.
    return cast(int, visit.manager_id)


def _opportunity(visit: ParcVisit) -> Opportunity:
    agreement = visit.agreement
    name = opportunity_name(agreement.opportunity_name, agreement.account.name, visit.visit_date)
    return Opportunity(
        account=agreement.account,
        name=name[:200],
        owner_id=_owner(visit),
        amount=agreement.opportunity_amount,
        expected_close=visit.visit_date,
    )


def _task(visit: ParcVisit, kind: str, label: str, day: date) -> Task:
    return Task(
        kind=kind,
        title=f"{label}: {visit.agreement.account.name} ({visit.visit_date:%Y-%m-%d})"[:200],
        owner_id=_owner(visit),
        account=visit.agreement.account,
        opportunity=visit.opportunity,
        due_at=_at(day, visit.agreement.visit_time),
    )


def _inspection(visit: ParcVisit) -> Task:
    day = visit.visit_date + timedelta(days=visit.agreement.inspection_offset_days)
    return _task(visit, Task.Kind.INSPECTION, "PARC inspection", day)


def _follow_up(visit: ParcVisit) -> Task:
    day = add_working_days(visit.visit_date, visit.agreement.follow_up_working_days)
    return _task(visit, Task.Kind.FOLLOW_UP, "PARC follow-up", day)


def _dispatch(visit: ParcVisit) -> Dispatch:
    agreement = visit.agreement
    start = _at(visit.visit_date, agreement.visit_time)
    return Dispatch(
        title=f"PARC visit: {agreement.account.name}"[:200],
        team=agreement.visiting_team,
        account=agreement.account,
        owner_id=_owner(visit),
        scheduled_at=start,
        due_at=start + agreement.visit_duration,
    )


def summarize(as_of: datetime) -> dict[str, int]:
    """One email per account manager about the visits generated for them and not yet
    summarized, grouped by account, and the mark that they were; call it in a transaction.
    Visits stream in as plain rows, one manager after another: memory holds one email."""
    summary = _claim(as_of)
    rows = (
        ParcVisit.objects.filter(summary=summary)
        .order_by("manager_id", "agreement__account__name", "visit_date", "pk")
        .values_list("manager_id", "agreement__account__name", "agreement__account_id", *FIELDS)
    )
    managers: list[int] = []
    queued = 0
    for manager_id, visits in groupby(rows.iterator(chunk_size=5000), key=itemgetter(0)):
        managers.append(manager_id)
        accounts: dict[tuple[str, int], list[dict]] = defaultdict(list)
        for _, account, account_id, *values in visits:
            accounts[account, account_id].append(dict(zip(FIELDS, values, strict=True)))
        queued += _queue_summary(manager_id, accounts, as_of, summary)
    notices = notify(
        managers,
        source=f"parc:{summary}",
        title=f"PARC run: visits generated for you on {timezone.localtime(as_of):%d %b %Y}",
        link=run_link(as_of),
        at=as_of,
    )
    return {"summaries": queued, "notices": notices}


def _claim(as_of: datetime) -> str:
    """Mark every visit not yet summarized as one new summary's, in one UPDATE, and return
    the summary's key. A concurrent run's UPDATE waits for these rows, then finds them
    summarized and takes only the others: each visit is in exactly one summary. A key of its
    own (not the manager and as_of) lets a re-run of the same as_of send what is new since."""
    summary = uuid.uuid4().hex
    ParcVisit.objects.filter(summarized_at=None, manager__isnull=False).update(
        summarized_at=as_of, summary=summary
    )
    return summary


def run_link(as_of: datetime) -> str:
    return f"{reverse('parc:run')}?{urlencode({'run': as_of.isoformat()})}"


FIELDS = ("visit_date", "late", "opportunity_id", "inspection_id", "follow_up_id", "dispatch_id")


def _links(visit: dict) -> list[tuple[str, str]]:
    site = settings.VIGIL_SITE_URL
    records = [
        ("Opportunity", "opportunity_detail", visit["opportunity_id"]),
        ("Inspection", "task_detail", visit["inspection_id"]),
        ("Follow-up", "task_detail", visit["follow_up_id"]),
        ("Dispatch", "dispatch_detail", visit["dispatch_id"]),
    ]
    return [(label, f"{site}{reverse(name, args=[pk])}") for label, name, pk in records if pk]


def _queue_summary(manager_id: int, accounts: dict, as_of: datetime, summary: str) -> int:
    manager = User.objects.filter(pk=manager_id, is_active=True).exclude(email="").first()
    if manager is None:
        return 0
    count = sum(len(v) for v in accounts.values())
    context = {
        "manager": manager,
        "accounts": [
            (
                name,
                f"{settings.VIGIL_SITE_URL}{reverse('parc:account', args=[pk])}",
                [(visit, _links(visit)) for visit in visits],
            )
            for (name, pk), visits in accounts.items()
        ],
        "count": count,
        "run_url": f"{settings.VIGIL_SITE_URL}{run_link(as_of)}",
    }
    email = outbox.Email(
        key=f"parc-summary:{manager.pk}:{summary}",
        source="parc_generate",
        to=[manager.email],
        subject=f"[Vigil] PARC: {count} visit(s) generated for {len(accounts)} account(s)",
        text_body=render_to_string("parc/summary_email.txt", context),
        html_body=render_to_string("parc/summary_email.html", context),
    )
    return outbox.queue([email], as_of)
