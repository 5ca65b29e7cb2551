"""What the daily bug report gathers: one function per kind of problem, each one query.

Events (errors, failed runs) are those of the report's company day; states (disabled and
overdue jobs, stuck email, bad data) are as they stand at as_of, and stay in the report every
day until someone deals with them.
"""

from django.db.models import (
    BooleanField,
    Case,
    Count,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Subquery,
    When,
    Window,
)
from django.db.models.functions import RowNumber
from django.utils import timezone

from crm.models import JobRun
from mailsync.models import OutboxMessage
from mailsync.outbox import CLAIM_LEASE
from monitoring import deadman, integrity
from monitoring.findings import LIMIT, Day, Finding, Group, Section, admin_url, counted, last_line
from monitoring.models import ErrorEvent

# --- Errors ------------------------------------------------------------------------------------


def error_events(day: Day) -> Section:
    seen = (
        ErrorEvent.objects.filter(Q(day=day.date) | Q(previous_day=day.date))
        .annotate(
            on_day=Case(When(day=day.date, then="day_count"), default="previous_day_count"),
            new=ExpressionWrapper(Q(first_seen__gte=day.start), output_field=BooleanField()),
        )
        .order_by("-new", "-regression", "-on_day", "title")
    )
    total, rows = counted(seen)
    findings = [
        Finding(
            label=e.title,
            url=admin_url("monitoring_errorevent_change", e.pk),
            detail=f"{e.on_day}× on the day, {e.count}× in all; {last_line(e.message)}",
            tags=[
                tag
                for tag, on in (
                    ("new", e.new),
                    ("regression", e.regression),
                    ("resolved", e.status == ErrorEvent.Status.RESOLVED),
                )
                if on
            ],
        )
        for e in rows
    ]
    url = admin_url("monitoring_errorevent_changelist")
    return Section("errors", "Error events, new ones first", total, findings, url)


# --- Jobs --------------------------------------------------------------------------------------


def failed_runs(day: Day) -> Section:
    """Runs that failed, and runs whose runner died half-way (abandoned: the catch-up ran
    their slot again, but something killed them)."""
    failed = JobRun.objects.filter(
        status__in=[JobRun.Status.FAILED, JobRun.Status.ABANDONED],
        started_at__gte=day.start,
        started_at__lt=day.end,
    )
    latest = failed.filter(job=OuterRef("job")).order_by("-started_at", "-pk")
    rows = list(
        failed.values("job")
        .annotate(
            failures=Count("pk"),
            last_id=Subquery(latest.values("pk")[:1]),
            last_error=Subquery(latest.values("error")[:1]),
        )
        .order_by("job")
    )
    findings = [
        Finding(
            label=r["job"],
            url=admin_url("crm_jobrun_change", r["last_id"]),
            detail=f"{r['failures']} failed or abandoned run(s); "
            f"last: {last_line(r['last_error'])}",
        )
        for r in rows
    ]
    total = sum(r["failures"] for r in rows)
    url = admin_url("crm_jobrun_changelist", query="?status__exact=failed")
    return Section("failed_runs", "Failed or abandoned job runs", total, findings, url)


def job_schedules(day: Day) -> list[Section]:
    """Disabled jobs, jobs Beat does not know, and the dead-man switch (one query)."""
    schedules = deadman.schedules()
    disabled = [
        Finding(
            s.job,
            admin_url("django_celery_beat_periodictask_change", s.task_id),
            "disabled after repeated failures or by an administrator",
        )
        for s in schedules
        if s.disabled
    ]
    overdue = []
    for s in schedules:
        if s.task_id is None:
            overdue.append(
                Finding(
                    s.job,
                    admin_url("django_celery_beat_periodictask_changelist"),
                    "Beat has no schedule for it (run manage.py sync_schedules)",
                )
            )
        elif late := deadman.overdue(s, day.as_of):
            since = (
                f"last success for {timezone.localtime(s.last_success):%Y-%m-%d %H:%M}"
                if s.last_success
                else "it never ran on schedule"
            )
            overdue.append(
                Finding(
                    s.job,
                    admin_url("crm_jobrun_changelist", query=f"?job__exact={s.job}"),
                    f"expected a run for {timezone.localtime(late.expected):%Y-%m-%d %H:%M}; "
                    f"{since}. Are Beat and a worker running?",
                    tags=["never ran"] if s.last_success is None else [],
                )
            )
    tasks = admin_url("django_celery_beat_periodictask_changelist")
    return [
        Section("disabled_jobs", "Disabled jobs", len(disabled), disabled, tasks),
        Section("overdue_jobs", "Jobs that did not run (dead-man switch)", len(overdue), overdue),
    ]


# --- Outbox ------------------------------------------------------------------------------------


def outbox_problems(day: Day) -> list[Section]:
    """Email that failed for good, and email a dead sender left in "sending" that no sender has
    taken back since (one query)."""
    status = OutboxMessage.Status
    stuck = Q(status=status.SENDING) & (
        Q(claimed_until__lt=day.as_of - CLAIM_LEASE) | Q(claimed_until__isnull=True)
    )
    rows = list(
        OutboxMessage.objects.filter(Q(status=status.FAILED) | stuck)
        .annotate(
            rank=Window(RowNumber(), partition_by=[F("status")], order_by=F("created_at").desc()),
            total_found=Window(Count("pk"), partition_by=[F("status")]),
        )
        .filter(rank__lte=LIMIT)
        .order_by("status", "-created_at")
    )
    sections = []
    for key, title, value in (
        ("failed_emails", "Email that failed for good", status.FAILED),
        ("stuck_emails", 'Email stuck in "sending"', status.SENDING),
    ):
        mine = [m for m in rows if m.status == value]
        findings = [
            Finding(
                f"{m.subject} → {', '.join(m.to) or '-'}",
                admin_url("mailsync_outboxmessage_change", m.pk),
                _outbox_detail(m),
            )
            for m in mine
        ]
        query = f"?status__exact={value}"
        url = admin_url("mailsync_outboxmessage_changelist", query=query)
        sections.append(Section(key, title, mine[0].total_found if mine else 0, findings, url))
    return sections


def _outbox_detail(message: OutboxMessage) -> str:
    if message.status == OutboxMessage.Status.FAILED:
        return last_line(message.last_error)
    if message.claimed_until is None:
        return "claimed by no sender"
    return (
        f"its sender's claim ran out at {timezone.localtime(message.claimed_until):%Y-%m-%d %H:%M}"
    )


def gather(day: Day) -> list[Group]:
    return [
        Group("Errors", [error_events(day)]),
        Group("Jobs", [failed_runs(day), *job_schedules(day)]),
        Group("Email", outbox_problems(day)),
        Group("Data integrity", [scan(day) for scan in integrity.SCANS]),
    ]
