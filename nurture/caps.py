"""Hourly caps on nurture emails, per recipient domain and per sending address (SendSettings),
shared by every worker: a row per (kind, name, hour) in SendCount, counted up in the same
transaction as the outbox rows it stands for.

Each batch asks for what it wants with one INSERT … ON CONFLICT DO UPDATE per kind, which
grants what is left under the cap and counts it at once: the row stays locked until the
batch commits, so two workers together never pass the cap, and a batch that rolls back gives
its count back with everything else. An email a cap does not grant is not sent: its step stays
due and goes in a later run (windows.hold), so the unit of work stays "one step once"."""

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from functools import reduce
from operator import or_
from typing import TypeVar

from django.conf import settings
from django.db import connection
from django.db.models import Case, F, Q, Value, When

from mailsync.suppression import normalise
from nurture.models import SendCount, SendSettings

T = TypeVar("T")
Kind = SendCount.Kind
PAGE = 500  # names per statement: five parameters each, under SQLite's limits
KEPT = timedelta(days=2)  # counts of older hours are deleted


def hour_of(as_of: datetime) -> datetime:
    return as_of.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def domain_of(address: str) -> str:
    return normalise(address).rpartition("@")[2]


def sender() -> str:
    """The address nurture emails are sent from (the outbox's default From)."""
    return normalise(parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or settings.DEFAULT_FROM_EMAIL)


class Caps:
    """The caps of one batch at `as_of`."""

    def __init__(self, rules: SendSettings, as_of: datetime) -> None:
        self.hour = hour_of(as_of)
        # Domains first: granting the sending address first would spend it on the first
        # emails of the batch, however many of them one domain then refuses.
        limits = {Kind.DOMAIN: rules.domain_hourly_cap, Kind.MAILBOX: rules.mailbox_hourly_cap}
        self.limits = {kind: cap for kind, cap in limits.items() if cap}
        self.sender = sender()

    def keys(self, address: str) -> dict[str, str]:
        """What an email to `address` is counted under."""
        return {Kind.DOMAIN: domain_of(address), Kind.MAILBOX: self.sender}

    def full(self, names: dict[str, set[str]]) -> set[tuple[str, str]]:
        """Which of these (kind → names) have reached their cap this hour, as things stand
        (one query, no lock): their items need not even be rendered."""
        wanted = [
            Q(kind=kind, name__in=names[kind], sent__gte=cap)
            for kind, cap in self.limits.items()
            if names.get(kind)
        ]
        if not wanted:
            return set()
        found = SendCount.objects.filter(reduce(or_, wanted), hour=self.hour)
        return set(found.values_list("kind", "name"))

    def split(
        self, items: Sequence[T], keys: Callable[[T], dict[str, str]]
    ) -> tuple[list[T], list[T]]:
        """(granted, refused): each item needs a grant of each capped kind; earlier items are
        granted first. Counts what it grants."""
        granted = list(items)
        taken: dict[str, Counter[str]] = {}
        for kind, cap in self.limits.items():
            asked = Counter(keys(item)[kind] for item in granted)
            given = _take(kind, asked, self.hour, cap)
            left = dict(given)
            kept = []
            for item in granted:
                name = keys(item)[kind]
                if left.get(name, 0) > 0:
                    left[name] -= 1
                    kept.append(item)
            granted = kept
            taken[kind] = Counter(given)
        self._give_back(taken, granted, keys)
        chosen = {id(item) for item in granted}
        return granted, [item for item in items if id(item) not in chosen]

    def _give_back(
        self,
        taken: dict[str, Counter[str]],
        granted: list[T],
        keys: Callable[[T], dict[str, str]],
    ) -> None:
        """A kind granted before a later one refused: count back what was not used, one
        statement a kind."""
        for kind, counted in taken.items():
            surplus = counted - Counter(keys(item)[kind] for item in granted)
            if surplus:
                back = Case(*(When(name=name, then=Value(n)) for name, n in surplus.items()))
                SendCount.objects.filter(kind=kind, hour=self.hour, name__in=surplus).update(
                    sent=F("sent") - back
                )


def _take(kind: str, asked: Counter[str], hour: datetime, cap: int) -> dict[str, int]:
    """Grant each name what it asks for, up to what is left of `cap` this hour, and count it:
    {name: granted}. Names in one order for every worker, so two batches wanting the same
    rows wait for each other rather than deadlock."""
    quote = connection.ops.quote_name
    table = quote(SendCount._meta.db_table)
    columns = ", ".join(quote(c) for c in ("kind", "name", "hour", "sent", "granted"))
    conflict = ", ".join(quote(c) for c in ("kind", "name", "hour"))
    sent, given = quote("sent"), quote("granted")
    least, greatest = ("LEAST", "GREATEST") if connection.vendor == "postgresql" else ("MIN", "MAX")
    left = f"{greatest}(%s - {table}.{sent}, 0)"
    hour_value = SendCount._meta.get_field("hour").get_db_prep_save(hour, connection)
    names = sorted(asked)
    granted: dict[str, int] = defaultdict(int)
    with connection.cursor() as cursor:
        for start in range(0, len(names), PAGE):
            page = names[start : start + PAGE]
            rows = [(kind, n, hour_value, min(asked[n], cap), min(asked[n], cap)) for n in page]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) "  # noqa: S608 - quoted names; values are parameters
                f"VALUES {', '.join(['(%s, %s, %s, %s, %s)'] * len(page))} "
                f"ON CONFLICT ({conflict}) DO UPDATE SET "
                f"{given} = {least}(excluded.{given}, {left}), "
                f"{sent} = {table}.{sent} + {least}(excluded.{given}, {left}) "
                f"RETURNING {quote('name')}, {given}",
                [*(value for row in rows for value in row), cap, cap],
            )
            for name, count in cursor.fetchall():
                granted[name] = count
    return granted


def forget_old(as_of: datetime) -> None:
    SendCount.objects.filter(hour__lt=hour_of(as_of) - KEPT).delete()
