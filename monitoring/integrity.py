"""Data-integrity scans for the bug report: records no rule of the database forbids but that
no process can handle. Each is one query; each lists up to LIMIT records and counts them all."""

from django.db import connection
from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from crm.models import RPH, Dispatch, Task, User
from finance.currencies import CURRENCIES
from finance.models import Invoice
from mailsync.models import Mailbox
from monitoring.findings import (
    LIMIT,
    Day,
    Finding,
    Section,
    admin_url,
    counted,
    last_line,
    listed_url,
)
from nurture.models import Enrollment


def bad_invoices(day: Day) -> Section:
    """A negative amount (a credit note) or debt (an overpayment, a credit) is valid."""
    today = timezone.localdate(day.as_of)
    impossible = Q(voucher_date__gt=today) | ~Q(currency__in=CURRENCIES)
    total, rows = counted(Invoice.objects.filter(impossible).order_by("pk"))
    findings = [
        Finding(
            i.number,
            admin_url("finance_invoice_change", i.pk),
            "; ".join(
                why
                for why, wrong in (
                    (f"currency {i.currency!r} is not ISO 4217", i.currency not in CURRENCIES),
                    (f"voucher date {i.voucher_date} is in the future", i.voucher_date > today),
                )
                if wrong
            ),
        )
        for i in rows
    ]
    url = listed_url("finance_invoice_changelist", rows)
    return Section("invoices", "Invoices with impossible data", total, findings, url)


def _owner_problem(user: User) -> str:
    if not user.is_active:
        return f"its owner {user.username} is deactivated"
    return f"its owner {user.username} is in no team"


def orphan_tasks(day: Day) -> Section:
    total, rows = counted(
        Task.objects.filter(status=Task.Status.OPEN)
        .filter(Q(owner__is_active=False) | Q(owner__team__isnull=True))
        .select_related("owner")
        .order_by("due_at", "pk")
    )
    findings = [
        Finding(t.title, admin_url("crm_task_change", t.pk), _owner_problem(t.owner)) for t in rows
    ]
    url = listed_url("crm_task_changelist", rows)
    return Section("tasks", "Open tasks without an owner or team", total, findings, url)


def orphan_dispatches(day: Day) -> Section:
    staffed = User.objects.filter(team=OuterRef("team"), is_active=True)
    total, rows = counted(
        Dispatch.objects.filter(status__in=Dispatch.OPEN_STATUSES)
        .annotate(staffed=Exists(staffed))
        .filter(Q(owner__is_active=False) | Q(staffed=False))
        .select_related("owner", "team")
        .order_by("due_at", "pk")
    )
    findings = [
        Finding(
            d.title,
            admin_url("crm_dispatch_change", d.pk),
            _owner_problem(d.owner)
            if not d.owner.is_active
            else f"its team {d.team.name} has no active member",
        )
        for d in rows
    ]
    url = listed_url("crm_dispatch_changelist", rows)
    return Section("dispatches", "Open dispatches without an owner or team", total, findings, url)


def reporting_circles(day: Day) -> Section:
    """Users who report to themselves, or up a chain that comes back to them. UNION (not UNION
    ALL) keeps each (user, boss) pair once, so the walk ends even around a circle."""
    table = User._meta.db_table
    sql = f"""
        WITH RECURSIVE chain(user_id, boss_id) AS (
            SELECT id, manager_id FROM {table} WHERE manager_id IS NOT NULL
            UNION
            SELECT chain.user_id, boss.manager_id FROM chain
            JOIN {table} boss ON boss.id = chain.boss_id
            WHERE boss.manager_id IS NOT NULL
        )
        SELECT u.id, u.username, u.manager_id, COUNT(*) OVER ()
        FROM {table} u
        WHERE u.id IN (SELECT user_id FROM chain WHERE boss_id = user_id)
        ORDER BY u.username
        LIMIT %s
    """  # noqa: S608 - the table name is the model's
    with connection.cursor() as cursor:
        cursor.execute(sql, [LIMIT])
        rows = cursor.fetchall()
    findings = [
        Finding(
            username,
            admin_url("crm_user_change", pk),
            "reports to themselves" if manager_id == pk else "is in a reporting circle",
        )
        for pk, username, manager_id, _ in rows
    ]
    total = rows[0][3] if rows else 0
    ids = ",".join(str(r[0]) for r in rows)
    url = admin_url("crm_user_changelist", query=f"?id__in={ids}") if rows else ""
    return Section(
        "reporting", "Users who report to themselves or in a circle", total, findings, url
    )


def unenrolled_leads(day: Day) -> Section:
    enrollments = Enrollment.objects.filter(rph=OuterRef("pk"))
    latest = enrollments.order_by("-enrolled_at", "-pk")
    total, rows = counted(
        RPH.objects.filter(status=RPH.Status.NURTURE_P2)
        .exclude(Exists(enrollments.filter(status=Enrollment.Status.ACTIVE)))
        .annotate(
            last_status=Subquery(latest.values("status")[:1]),
            last_reason=Subquery(latest.values("stop_reason")[:1]),
        )
        .order_by("status_changed_at", "pk")
    )
    findings = [
        Finding(
            r.name,
            admin_url("crm_rph_change", r.pk),
            f"its enrollment is {r.last_status}" + (f": {r.last_reason}" if r.last_reason else "")
            if r.last_status
            else "never enrolled (is a nurture sequence active?)",
        )
        for r in rows
    ]
    url = listed_url("crm_rph_changelist", rows)
    return Section("nurture", "Leads in nurture P2 without an enrollment", total, findings, url)


def mailboxes_to_reconnect(day: Day) -> Section:
    total, rows = counted(
        Mailbox.objects.filter(status=Mailbox.Status.RECONNECT)
        .select_related("owner")
        .order_by("address", "pk")
    )
    findings = [
        Finding(
            f"{m.address} ({m.owner.username})",
            admin_url("mailsync_mailbox_change", m.pk),
            last_line(m.last_error),
        )
        for m in rows
    ]
    url = admin_url("mailsync_mailbox_changelist", query="?status__exact=reconnect")
    return Section("mailboxes", "Mailboxes needing reconnection", total, findings, url)


SCANS = [
    bad_invoices,
    orphan_tasks,
    orphan_dispatches,
    reporting_circles,
    unenrolled_leads,
    mailboxes_to_reconnect,
]
