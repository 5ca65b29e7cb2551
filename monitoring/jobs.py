from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from crm.registry import Counts, job
from mailsync import outbox
from monitoring import findings, report
from monitoring.models import BugReport
from monitoring.receivers import administrator_emails


@job("bug_report", schedule="0 7 * * *", final_effects="emails the administrators")
def bug_report(as_of: datetime, *, dry_run: bool = False) -> Counts:
    """Email the administrators one report of everything found wrong the day before as_of."""
    day = findings.day_before(as_of)
    with transaction.atomic():  # the report's page and its email, or neither
        groups = report.gather(day)
        counts = {s.key: s.total for g in groups for s in g.sections}
        if dry_run:
            return {**counts, "emailed": 0}
        BugReport.objects.bulk_create([page(day, groups, counts)], ignore_conflicts=True)
        # A re-run of the day keeps and re-sends (by its key: nothing) the first report.
        kept = BugReport.objects.get(day=day.date)
        emailed = email(kept, as_of)
    return {**counts, "emailed": emailed}


def page(day: findings.Day, groups: list[findings.Group], counts: Counts) -> BugReport:
    problems = sum(counts.values())
    context = {
        "day": day.date,
        "groups": groups,
        "problems": problems,
        "events_url": findings.admin_url("monitoring_errorevent_changelist"),
    }
    subject = f"[Vigil] Bug report for {day.date:%a %d %b %Y}: " + (
        f"{problems} problem{'s' if problems != 1 else ''}" if problems else "all clear"
    )
    return BugReport(
        day=day.date,
        as_of=day.as_of,
        all_clear=not problems,
        counts=counts,
        subject=subject,
        html=render_to_string("monitoring/bug_report.html", context),
        text=render_to_string("monitoring/bug_report.txt", context),
    )


def email(kept: BugReport, as_of: datetime) -> int:
    recipients = administrator_emails()
    if not recipients:
        return 0
    page_url = settings.VIGIL_SITE_URL + reverse(
        "admin:monitoring_bugreport_change", args=[kept.pk]
    )
    return outbox.queue(
        [
            outbox.Email(
                key=f"bug-report:{kept.day.isoformat()}",
                source="bug_report",
                to=recipients,
                subject=kept.subject,
                text_body=f"{kept.text}\nThis report in the admin: {page_url}\n",
                html_body=render_to_string(
                    "monitoring/bug_report_email.html", {"report": kept, "page_url": page_url}
                ),
            )
        ],
        as_of,
    )
