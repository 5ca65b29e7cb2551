"""One search box: the accounts, contacts, leads and opportunities a user may see, found by
name (and a lead's company, a contact's or a lead's email), grouped by kind, a few of each.

Each kind is one query whatever the data, two for the kinds shown by name (_rows).
icontains, which PostgreSQL runs as UPPER(column) LIKE UPPER('%…%'), is served by the
trigram GIN indexes of crm 0005 and 0007, read for 16 characters of longer words
(crm.matching.contains).
A trigram index finds a substring only from three characters on, so a query without three
letters or digits in a row looks for names (companies, emails) that start with it instead."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.shortcuts import render
from django.urls import NoReverseMatch, path, reverse
from django.views.decorators.http import require_http_methods

from crm.links import record_url
from crm.matching import (
    PLANNED,
    PUNCTUATION_ALONE,
    TAILS,
    TRIGRAM,
    Search,
    first_keys,
    search_mode,
)
from crm.models import RPH, Account, Contact, Opportunity, User
from crm.paging import rows_by_key
from crm.visibility import mine, visible_to

MAX_LENGTH = 200
PER_KIND = 10


@dataclass(frozen=True)
class Kind:
    """One kind of record the box searches."""

    key: str
    label: str
    page: str  # URL name of a record's page
    list_page: str | None  # URL name of the kind's list, which takes ?q=
    fields: tuple[str, ...]
    # The order of an index the planner may walk, filtering as it goes, when the words are
    # common; for rare ones it reads the trigram indexes and sorts the few matches.
    order: tuple[str, ...]
    records: Callable[[User], QuerySet]  # what the user may see of the kind
    detail: Callable[[Any], str]  # the line under a result's name
    read: str = PLANNED  # how first_keys reads every match past its walk (Search.read)

    def search(self, query: str, mode: str) -> Search:
        return Search(self.fields, query, mode, read=self.read)

    def list_url(self, query: str) -> str | None:
        if self.list_page is None:
            return None
        try:
            return f"{reverse(self.list_page)}?{urlencode({'q': query})}"
        except NoReverseMatch:  # a list still to be built
            return None


def _joined(*parts: object) -> str:
    return " · ".join(str(part) for part in parts if part)


KINDS: tuple[Kind, ...] = (
    Kind(
        "accounts",
        "Accounts",
        "parc:account",
        "accounts",
        ("name",),
        ("name", "pk"),
        lambda user: visible_to(user, Account.objects.select_related("team", "account_manager")),
        lambda account: _joined(account.team, account.account_manager),
    ),
    Kind(
        "contacts",
        "Contacts",
        "mailsync:contact",
        "contacts",
        ("name", "email"),
        ("name", "pk"),
        lambda user: visible_to(user, Contact.objects.select_related("account")),
        lambda contact: _joined(contact.email, contact.account),
        # A first name ("nora": a team's 80 ms as PostgreSQL plans it, 12 from these) or an
        # address ("nora.kowalski": 10 -> 4 ms): the start indexes, then the tail index.
        TAILS,
    ),
    Kind(
        "leads",
        "Leads",
        "nurture:rph",
        "leads",
        ("name", "company", "email"),
        ("-last_activity_at", "-pk"),  # as the lead list, which "more" opens
        lambda user: mine(user, RPH.objects.all()),  # the lead list's rule
        lambda lead: _joined(lead.company, lead.email, lead.get_status_display()),
    ),
    Kind(
        "opportunities",
        "Opportunities",
        "opportunity_detail",
        None,
        ("name",),
        ("-pk",),  # the newest first: opportunities have no index by name
        lambda user: visible_to(user, Opportunity.objects.select_related("account")),
        lambda deal: _joined(deal.account, deal.get_stage_display()),
    ),
)


@dataclass(frozen=True)
class Hit:
    record: object
    url: str
    detail: str


@dataclass(frozen=True)
class Found:
    kind: Kind
    hits: list[Hit]
    more: bool  # more than PER_KIND match
    more_url: str | None


def search(user: User, query: str) -> list[Found]:
    """What `user` may see of each kind that matches `query`: PER_KIND at most, one query a
    kind, two for a kind sorted by a column it searches (_rows). LIKE's wildcards (%, _) and
    backslashes in the query are literal characters."""
    mode = search_mode(query)
    if not mode:
        return []
    found = []
    for kind in KINDS:
        rows = _rows(kind, kind.records(user), query, mode)
        hits = [Hit(row, record_url(kind.page, row.pk), kind.detail(row)) for row in rows]
        more = len(hits) > PER_KIND
        found.append(Found(kind, hits[:PER_KIND], more, kind.list_url(query) if more else None))
    return found


def _rows(kind: Kind, records: QuerySet, query: str, mode: str) -> list:
    """The first PER_KIND + 1 matches, in the kind's order. Sorted by a column it searches (a
    name), a kind's matches lie in one block of that order (every "Nora …" after every "A…"
    to "M…"), which PostgreSQL cannot tell and would walk to: their keys are read first by
    crm.matching.first_keys, in bounded time, then their rows. In any other order (the
    newest first) matches are spread along it, and PostgreSQL's own plan, with the
    statistics of crm 0017, is the cheapest: a short walk of the order for common words, the
    search indexes for rare ones."""
    ordered, search = records.order_by(*kind.order), kind.search(query, mode)
    matching = ordered.filter(search.q())
    if kind.order[0].removeprefix("-") not in kind.fields:
        return list(matching[: PER_KIND + 1])
    return rows_by_key(records, first_keys(ordered, search, PER_KIND + 1))


def matching(kind: Kind, user: User, query: str, mode: str) -> QuerySet:
    """The records of `kind` that `user` may see and `query` matches, in the kind's order."""
    return kind.records(user).filter(kind.search(query, mode).q()).order_by(*kind.order)


class SearchForm(forms.Form):
    # CharField refuses NUL characters (PostgreSQL cannot hold them) and more than MAX_LENGTH.
    q = forms.CharField(label="Search", required=False, max_length=MAX_LENGTH)

    def problem(self) -> str:
        """The one line that says why the query was not searched, or ""."""
        if self.is_valid():
            return ""
        return "Not searched: " + " ".join(str(error) for error in self.errors["q"])


@login_required
@require_http_methods(["GET"])
def search_page(request):
    form = SearchForm(request.GET)
    problem = form.problem()
    query = "" if problem else form.cleaned_data["q"]
    mode = search_mode(query) if query else ""
    if query and not mode:
        problem = f"Not searched: {PUNCTUATION_ALONE}"
    context = {
        "form": form,
        "query": query,
        "mode": mode,
        "problem": problem,
        "found": search(request.user, query) if mode else [],
        "per_kind": PER_KIND,
        "trigram": TRIGRAM,
        "max_length": MAX_LENGTH,
    }
    return render(request, "crm/search.html", context)


# Included by crm/urls.py as "search/": the box's one URL, with its view.
urlpatterns = [path("", search_page, name="search")]
