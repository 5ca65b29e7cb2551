"""Who may see which records. A rep or manager sees their own team's records, an administrator
everyone's; nobody sees another team's records, in a list or by URL."""

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import BigIntegerField, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Cast
from django.utils import timezone

from crm.models import (
    RPH,
    Absence,
    Account,
    Contact,
    Dispatch,
    Event,
    Opportunity,
    OwnerPipeline,
    OwnerTaskDay,
    Task,
    Team,
    User,
    time_zones,
)

# The path from each model to the team its records belong to.
TEAM_PATHS: dict[type, tuple[str, ...]] = {
    Task: ("team",),  # the owner's team, copied by the database (crm/triggers.py)
    Opportunity: ("owner__team",),
    Event: ("team",),  # the owner's team, copied by the database
    # The team it is sent to, and its account's team (copied by the database).
    Dispatch: ("team", "account_team"),
    Account: ("team",),
    Contact: ("team",),  # the account's team, copied by the database (crm/triggers.py)
    RPH: ("team",),  # the owner's team, copied by the database (crm/triggers.py)
    User: ("team",),  # the people of one's own team
    Absence: ("user__team",),
    # The dashboard's rollups (crm/rollups.py): a row is of the person it names, read now.
    OwnerPipeline: ("owner__team",),
    OwnerTaskDay: ("owner__team",),
}


def team_of(user: User) -> Cast:
    """The user's team as the team columns hold it, a bigint: a team column that leads a
    search index (crm.indexes.add_team_trigram_index) is compared with a bigint only; the
    integer a query parameter is sent as would leave the index unread."""
    return Cast(Value(user.team_id), BigIntegerField())


def visible_to(user: User, queryset: QuerySet, team_paths: tuple[str, ...] | None = None):
    """`queryset` narrowed to what `user` may see."""
    if user.is_administrator:
        return queryset
    paths = team_paths or TEAM_PATHS[queryset.model]
    if user.team_id is None:
        return queryset.none()
    team = team_of(user)
    if len(paths) == 1:
        return queryset.filter(**{f"{paths[0]}_id": team})
    # Several ways in: OR them as EXISTS rather than joins, so the database can still walk an
    # index in the list's order and stop at the page size.
    allowed: Any = Q()
    for path in paths:
        head, _, rest = path.partition("__")
        if not rest:
            allowed |= Q(**{f"{head}_id": team})
            continue
        related = queryset.model._meta.get_field(head).related_model
        allowed |= Exists(related.objects.filter(pk=OuterRef(f"{head}_id"), **{f"{rest}_id": team}))
    return queryset.filter(allowed)


def visible_parts(user: User, queryset: QuerySet) -> list[QuerySet]:
    """What visible_to(user, queryset) matches, as disjoint querysets, one per path to the
    team: each is counted through its own index, where the OR of visible_to would scan every
    row of the table."""
    paths = TEAM_PATHS[queryset.model]
    if user.is_administrator or user.team_id is None or len(paths) == 1:
        return [visible_to(user, queryset)]
    parts, earlier, team = [], Q(), team_of(user)
    for path in paths:
        this = Q(**{f"{path}_id": team})
        parts.append(queryset.filter(this).exclude(earlier) if earlier else queryset.filter(this))
        earlier |= this
    return parts


def may_change(user: User, obj) -> bool:
    """Whether `user` may act on a record they can see: its owner, a manager, an
    administrator, or whoever stands in for its owner while they are away."""
    if user.pk == obj.owner_id or user.is_administrator or user.role == User.Role.MANAGER:
        return True
    return stands_in_for(user, obj.owner_id)


def stands_in_for(user: User, owner_id: int | None) -> bool:
    """`user`, who sells, is the delegate of `owner_id`'s absence today: they deal with the
    absent person's records (their blocking items are listed to them). One query."""
    if owner_id is None or user.role not in (User.Role.REP, User.Role.MANAGER):
        return False
    absences = Absence.objects.filter(user_id=owner_id, delegate=user)
    return bool(away_today(absences, timezone.now()))


def away_today(absences: QuerySet, now: datetime) -> dict[int, date]:
    """Of `absences`, who is away at `now`, with the last day they are: an absence is whole
    days in the absent person's own zone. One query."""
    utc = now.astimezone(UTC).date()
    rows = absences.filter(
        first_day__lte=utc + timedelta(days=1), last_day__gte=utc - timedelta(days=1)
    ).values_list("user_id", "first_day", "last_day", "user__time_zone")
    zones = time_zones()
    away: dict[int, date] = {}
    for user_id, first_day, last_day, zone in rows:
        today = now.astimezone(ZoneInfo(zone if zone in zones else settings.TIME_ZONE)).date()
        if first_day <= today <= last_day:
            away[user_id] = max(last_day, away.get(user_id, last_day))
    return away


def mine(user: User, queryset: QuerySet, owner: str = "owner") -> QuerySet:
    """A rep's own records; a manager's team's; an administrator's everything."""
    if user.is_administrator:
        return queryset
    if user.role == User.Role.MANAGER:
        return visible_to(user, queryset)
    return queryset.filter(**{owner: user})


def teams_visible_to(user: User, queryset: QuerySet) -> QuerySet:
    """A user's own team, and the visiting teams every sales team sends its visits to."""
    if user.is_administrator:
        return queryset
    return queryset.filter(Q(pk=user.team_id) | Q(kind=Team.Kind.VISITING))
