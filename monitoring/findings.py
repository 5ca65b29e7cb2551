"""The pieces a bug report is made of: findings (one thing wrong, with a link into the admin),
sections of them (one kind, with how many in all) and groups of sections; and the company day
a report covers."""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Count, QuerySet, Window
from django.urls import reverse
from django.utils import timezone

from crm import slots

LIMIT = 50  # findings listed per section; its count covers them all


@dataclass
class Finding:
    label: str
    url: str
    detail: str = ""
    tags: list[str] = field(default_factory=list)


@dataclass
class Section:
    key: str
    title: str
    total: int
    findings: list[Finding]
    url: str = ""

    @property
    def more(self) -> int:
        return self.total - len(self.findings)


@dataclass
class Group:
    title: str
    sections: list[Section]

    @property
    def total(self) -> int:
        return sum(s.total for s in self.sections)


@dataclass(frozen=True)
class Day:
    """The company day a report covers, from start to end, and the time it looks from."""

    date: date
    start: datetime
    end: datetime
    as_of: datetime


def day_before(as_of: datetime) -> Day:
    covered = timezone.localdate(as_of) - timedelta(days=1)
    tz = timezone.get_current_timezone_name()
    start = slots.local_instant(datetime.combine(covered, time.min), tz)
    end = slots.local_instant(datetime.combine(covered + timedelta(days=1), time.min), tz)
    return Day(covered, start, end, as_of)


def admin_url(name: str, *args: object, query: str = "") -> str:
    return f"{settings.VIGIL_SITE_URL}{reverse(f'admin:{name}', args=args)}{query}"


def listed_url(name: str, rows: list) -> str:
    """The admin's list of exactly the rows a section lists."""
    return admin_url(name, query=f"?id__in={','.join(str(r.pk) for r in rows)}") if rows else ""


def counted(queryset: QuerySet) -> tuple[int, list]:
    """Up to LIMIT rows and how many there are in all, in one query."""
    rows = list(queryset.annotate(total_found=Window(Count("pk")))[:LIMIT])
    return (rows[0].total_found if rows else 0), rows


def last_line(text: str) -> str:
    """The line of an error text that says what went wrong (a traceback's last)."""
    lines = text.strip().splitlines()
    return lines[-1][:200] if lines else ""
