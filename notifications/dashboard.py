"""What the dashboard reads, in a fixed handful of cheap queries whatever the data.

Each card's first rows come in urgency order (see notifications.lists) from one range of an
index per urgency bucket, each stopping at the card's size: never a sort of a rep's whole
backlog. All the cards' totals come from one query of counts. Rows are plain values, not
model instances: the page only shows them.

Building those queries costs more Python than running them, so on PostgreSQL they are built
once per kind of user (role, team or not, time zone) with stand-in values for the user, the
team and the time, and each request runs the cached SQL with its own values swapped in (as
the blocking gate does). Elsewhere (SQLite, the embedded default) the ORM runs them.
"""

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    DateTimeField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, TruncDate, TruncDay
from django.utils import timezone

from crm.links import record_url
from crm.models import Dispatch, Event, Opportunity, OwnerPipeline, OwnerTaskDay, Task, User
from crm.visibility import mine, visible_parts, visible_to
from notifications import charts, lists
from notifications.lists import BLOCKING, OVERDUE, TODAY, UPCOMING, today_bounds

NOTIFICATIONS, TASKS, ROWS = 10, 15, 10
TREND_DAYS = 14


@dataclass
class Card:
    rows: list[dict]
    total: int = 0
    overdue: int = 0  # of the total, how many are from before today

    @property
    def more(self) -> int:
        """How many the card does not show."""
        return self.total - len(self.rows)


@dataclass(frozen=True)
class Bucket:
    """One urgency bucket of a card: which rows, in which order, sorted again in Python by
    `key` after the buckets come back together."""

    urgency: int
    where: Q
    order: tuple[str, ...]
    key: Callable[[dict], tuple]


@dataclass(frozen=True)
class Moments:
    """Every time the dashboard's queries depend on, all derived from `now` here, so that
    stand-in values can be swapped for real ones one to one."""

    now: datetime
    start: datetime  # of today, local
    end: datetime  # of today
    stale_before: datetime  # reminders older than this are no longer shown
    week: datetime  # the end of the seventh day from today, for events
    trend_from: datetime

    @classmethod
    def at(cls, now: datetime) -> "Moments":
        start, end = today_bounds(now)
        return cls(
            now=now,
            start=start,
            end=end,
            stale_before=now - timedelta(days=settings.VIGIL_REMINDER_EXPIRY_DAYS),
            week=start + timedelta(days=7),
            trend_from=end - timedelta(days=TREND_DAYS),
        )

    def values(self) -> tuple[datetime, ...]:
        return (self.now, self.start, self.end, self.stale_before, self.week, self.trend_from)


def _ascending(name: str) -> Callable[[dict], tuple]:
    return lambda row: (row[name], row["pk"])


def _descending(name: str) -> Callable[[dict], tuple]:
    return lambda row: (-row[name].timestamp(), row["pk"])


def _date_buckets(name: str, at: Moments, since: datetime | None = None) -> list[Bucket]:
    overdue = Q(**{f"{name}__lt": at.start}) & (Q(**{f"{name}__gte": since}) if since else Q())
    today = Q(**{f"{name}__gte": at.start, f"{name}__lt": at.end})
    return [
        Bucket(TODAY, today, (name,), _ascending(name)),
        Bucket(OVERDUE, overdue, (f"-{name}",), _descending(name)),
        Bucket(UPCOMING, Q(**{f"{name}__gte": at.end}), (name,), _ascending(name)),
    ]


def _notification_buckets(at: Moments) -> list[Bucket]:
    blocking = Bucket(
        BLOCKING,
        Q(blocking=True),
        ("grace_deadline", "expires_at"),
        lambda row: (row["grace_deadline"], row["expires_at"], row["pk"]),
    )
    reminders = [
        Bucket(b.urgency, b.where & Q(blocking=False), b.order, b.key)
        for b in _date_buckets("expires_at", at, since=at.stale_before)
    ]
    return [blocking, *reminders]


DISPATCH_FIELDS = ["pk", "title", "due_at", "team_id", "team__name"]
EVENT_FIELDS = ["pk", "title", "start_at", "owner_id", "account__name"]
NOTIFICATION_FIELDS = [
    "pk",
    "title",
    "note",
    "link",
    "object_kind",
    "object_id",
    "expires_at",
    "blocking",
    "grace_deadline",
    "stage",
]
TASK_FIELDS = [
    "pk",
    "title",
    "due_at",
    "status",
    "account_id",
    "account__name",
    "owner_id",
    "owner__first_name",
    "owner__last_name",
    "owner__username",
]


def _stage() -> Case:
    """An opportunity notification's current stage, for its quick stage change."""
    stage = Opportunity.objects.filter(pk=OuterRef("object_id")).values("stage")[:1]
    return Case(When(object_kind="opportunity", then=Subquery(stage)), default=None)


def _parts(queryset: QuerySet, buckets: list[Bucket], fields: list[str], limit: int) -> list:
    """One query per bucket, in the order of an index and stopping at `limit`. No "pk" tie
    break in the SQL: it would make PostgreSQL sort each bucket's rows after reading them,
    where the index order alone lets it stop at `limit`; `key` breaks ties afterwards."""
    return [
        queryset.filter(b.where)
        .annotate(urgency=Value(b.urgency))
        .order_by(*b.order)
        .values(*fields, "urgency")[:limit]
        for b in buckets
    ]


def _queries(user: User, at: Moments) -> dict[str, list[QuerySet]]:
    """Every query of the page, unevaluated: a list of bucket parts for the urgency-ordered
    cards, of disjoint parts for a total."""
    notifications = lists.shown_notifications(user, at.now)
    tasks = mine(user, Task.objects.filter(status=Task.Status.OPEN))
    # The day's events, the morning's included, and the next six days' (as the "All upcoming
    # events" list): one range of the (owner, start) index.
    events = mine(user, Event.objects.filter(start_at__gte=at.start, start_at__lt=at.week))
    open_dispatches = Dispatch.objects.filter(status__in=Dispatch.OPEN_STATUSES)
    pipeline = mine(user, OwnerPipeline.objects.filter(stage__in=Opportunity.OPEN_STAGES))
    return {
        "notifications": _parts(
            notifications.annotate(stage=_stage()),
            _notification_buckets(at),
            NOTIFICATION_FIELDS,
            NOTIFICATIONS,
        ),
        "tasks": _parts(tasks, _date_buckets("due_at", at)[:2], TASK_FIELDS, TASKS),
        "events": [events.order_by("start_at").values(*EVENT_FIELDS)[:ROWS]],
        "dispatches": [
            visible_to(user, open_dispatches).order_by("due_at").values(*DISPATCH_FIELDS)[:ROWS]
        ],
        # From the rollups the database keeps (crm/rollups.py), a row per person and stage
        # or due day, not the team's every opportunity and task.
        "pipeline": [
            pipeline.values("stage")
            .annotate(count=Cast(Sum("opportunities"), BigIntegerField()), total=Sum("amount"))
            .order_by()
        ],
        "trend": [
            tasks.filter(due_at__gte=at.trend_from, due_at__lt=at.end)
            .annotate(day=TruncDate("due_at"))
            .values("day")
            .annotate(count=Count("*"))
            .order_by()
        ],
        # Blocking, then the rest from today on: two index ranges, not one scan of every open
        # notification the user ever had. The overdue ones (from stale_before to today) are
        # counted once, below, and read() adds them: a manager's 13,800 were counted twice.
        "total:notifications": [
            notifications.filter(blocking=True),
            notifications.filter(blocking=False, expires_at__gte=at.start),
        ],
        "total:notifications_overdue": [
            notifications.filter(
                blocking=False, expires_at__gte=at.stale_before, expires_at__lt=at.start
            )
        ],
        "total:tasks": _due_before(user, tasks, at.end),
        "total:tasks_overdue": _due_before(user, tasks, at.start),
        "total:events": [events],
        "total:dispatches": visible_parts(user, open_dispatches),
    }


@dataclass(frozen=True)
class Summed:
    """A part of a total that adds up a rollup's `field` instead of counting rows."""

    rows: QuerySet
    field: str


def _due_before(user: User, tasks: QuerySet, moment: datetime) -> list:
    """The parts of a count of open `tasks` due before `moment`: the rollup's days before
    moment's day (UTC), then the tasks of that day up to `moment`, read from the tasks."""
    day = Value(moment, output_field=DateTimeField())
    rollup = mine(user, OwnerTaskDay.objects.filter(due_day__lt=TruncDate(day, tzinfo=UTC)))
    return [
        Summed(rollup, "tasks"),
        tasks.filter(due_at__lt=moment, due_at__gte=TruncDay(day, tzinfo=UTC)),
    ]


def _totals_sql(queries: dict[str, list]) -> tuple[str, Sequence]:
    """One query for every card's total: the sum of the counts (or sums) of its disjoint
    parts. The notifications' total is completed by read(), which adds the overdue ones
    (counted once, for their own total)."""
    selects: list[str] = []
    params: list = []
    for name, parts in queries.items():
        if not name.startswith("total:"):
            continue
        label, counts = name.removeprefix("total:"), []
        for i, part in enumerate(parts):
            field = part.field if isinstance(part, Summed) else "pk"
            rows = part.rows if isinstance(part, Summed) else part
            try:
                sql, values = rows.order_by().values(field).query.sql_with_params()
            except EmptyResultSet:  # e.g. a user in no team sees no team's records
                counts.append("0")
                continue
            summed = f"CAST(COALESCE(SUM({field}), 0) AS BIGINT)"
            total = summed if isinstance(part, Summed) else "COUNT(*)"
            counts.append(f"(SELECT {total} FROM ({sql}) AS {label}_{i})")  # noqa: S608
            params.extend(values)
        selects.append(f"{' + '.join(counts)} AS {label}")
    return f"SELECT {', '.join(selects)}", params


def _run_orm(user: User, at: Moments) -> dict[str, list[dict]]:
    queries = _queries(user, at)
    results = {
        name: [row for part in parts for row in part]
        for name, parts in queries.items()
        if not name.startswith("total:")
    }
    results["totals"] = [_fetch(*_totals_sql(queries))[0]]
    return results


# Stand-ins for the compiled statements: values no real user, team or moment can have.
_USER, _TEAM = -8_675_309, -8_675_310
_NOW = datetime(1901, 2, 3, 4, 5, 6, 789, tzinfo=UTC)


@functools.lru_cache(maxsize=256)
def _compiled(
    is_superuser: bool, role: str, has_team: bool, zone: str, expiry_days: int
) -> dict[str, tuple[str, Sequence] | None]:
    """The page's SQL for one kind of user, built with stand-in values (see the module's
    docstring). The cache key is everything the SQL's text depends on."""
    user = User(pk=_USER, team_id=_TEAM if has_team else None, role=role)
    user.is_superuser = is_superuser
    at = Moments.at(_NOW)
    queries = _queries(user, at)
    statements: dict[str, tuple[str, Sequence] | None] = {}
    for name, parts in queries.items():
        if not name.startswith("total:"):
            combined = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
            try:
                statements[name] = combined.query.sql_with_params()
            except EmptyResultSet:  # nothing to read for this kind of user: no query
                statements[name] = None
    statements["totals"] = _totals_sql(queries)
    stand_ins = set(at.values())
    strays = [
        p
        for _, params in filter(None, statements.values())
        for p in params
        if isinstance(p, datetime) and p not in stand_ins
    ]
    if strays or len(stand_ins) != len(at.values()):
        # A time not derived from Moments would stay frozen in 1901 for every request.
        raise RuntimeError(f"dashboard SQL has times that are not stand-ins: {strays}")
    return statements


def _run_compiled(user: User, at: Moments) -> dict[str, list[dict]]:
    statements = _compiled(
        user.is_superuser,
        user.role,
        user.team_id is not None,
        timezone.get_current_timezone_name(),
        settings.VIGIL_REMINDER_EXPIRY_DAYS,
    )
    real: dict[object, object] = dict(zip(Moments.at(_NOW).values(), at.values(), strict=True))
    real.update({_USER: user.pk, _TEAM: user.team_id})
    return {
        name: _fetch(statement[0], [real.get(p, p) if _swappable(p) else p for p in statement[1]])
        if statement
        else []
        for name, statement in statements.items()
    }


def _swappable(param) -> bool:
    return isinstance(param, datetime) or (isinstance(param, int) and not isinstance(param, bool))


def _fetch(sql: str, params) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _in_order(rows: list[dict], buckets: list[Bucket], limit: int) -> list[dict]:
    keys = {b.urgency: b.key for b in buckets}
    rows.sort(key=lambda row: (row["urgency"], *keys[row["urgency"]](row)))
    return rows[:limit]


def _with_links(rows: list[dict]) -> list[dict]:
    for row in rows:
        row.update(lists.links(row["pk"], row["object_kind"], row["object_id"], row["link"]))
        if row["stage"]:
            row["stage_url"] = record_url("opportunity_update", row["object_id"])
    return rows


def _task_rows(rows: list[dict]) -> list[dict]:
    for row in rows:
        row["url"] = record_url("task_detail", row["pk"])
        row["complete_url"] = record_url("task_complete", row["pk"])
        full = f"{row['owner__first_name']} {row['owner__last_name']}".strip()
        row["owner_name"] = full or row["owner__username"]
    return rows


def _linked(rows: list[dict], url_name: str) -> list[dict]:
    for row in rows:
        row["url"] = record_url(url_name, row["pk"])
    return rows


def read(user: User, now: datetime) -> dict:
    """Everything the dashboard shows, for `user` at `now`."""
    at = Moments.at(now)
    fast = connection.vendor == "postgresql"
    results = _run_compiled(user, at) if fast else _run_orm(user, at)
    cards = {
        "notifications": Card(
            _with_links(
                _in_order(results["notifications"], _notification_buckets(at), NOTIFICATIONS)
            )
        ),
        "tasks": Card(
            _task_rows(_in_order(results["tasks"], _date_buckets("due_at", at)[:2], TASKS))
        ),
        "events": Card(
            _linked(sorted(results["events"], key=_ascending("start_at")), "event_detail")
        ),
        "dispatches": Card(
            _linked(sorted(results["dispatches"], key=_ascending("due_at")), "dispatch_detail")
        ),
    }
    [totals] = results["totals"]
    totals["notifications"] += totals["notifications_overdue"]  # counted once (_queries)
    for name, card in cards.items():
        card.total = totals[name]
        card.overdue = totals.get(f"{name}_overdue", 0)
    return {
        **cards,
        "pipeline": charts.pipeline(results["pipeline"]),
        "trend": charts.daily(results["trend"], at.start.date(), days=TREND_DAYS),
        "stages": Opportunity.Stage.choices,
    }
