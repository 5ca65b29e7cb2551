from django.contrib import admin, messages
from django.contrib.admin.utils import (
    NotRelationField,
    get_fields_from_path,
    lookup_spawns_duplicates,
)
from django.contrib.admin.views.main import ORDER_VAR, SEARCH_VAR, ChangeList
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.core.paginator import Paginator
from django.db.models import CharField, Q, QuerySet, TextField
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.text import smart_split, unescape_string_literal
from django_celery_beat.admin import PeriodicTaskAdmin as BeatPeriodicTaskAdmin
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from crm import absences, dates, ledger, registry
from crm.forms import time_zone_select
from crm.matching import PUNCTUATION_ALONE, Search, search_mode
from crm.models import (
    RPH,
    Absence,
    Account,
    CalendarFeed,
    Contact,
    ContactStatusChange,
    Dispatch,
    Event,
    Holiday,
    JobLock,
    JobRun,
    Opportunity,
    Task,
    Team,
    User,
    WorkingCalendar,
)
from crm.paging import capped_count
from crm.tasks import run_job_now
from crm.visibility import TEAM_PATHS, teams_visible_to, visible_to


def is_administrator(user) -> bool:
    """User.is_administrator for anyone the admin asks, the anonymous visitor of its login page
    included."""
    return getattr(user, "is_administrator", False)


class OwnTeams(admin.RelatedFieldListFilter):
    """A list filter on a team that offers the teams the user may see (the team admin's rows
    for them), not every team's name. Read from the teams: Django's RelatedOnlyFieldListFilter
    reads the teams of every row listed (a million accounts: 40 ms a page)."""

    def field_choices(self, field, request, model_admin):
        teams = model_admin.choices(request, field.related_model._default_manager.all())
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(
            include_blank=False, ordering=ordering, limit_choices_to={"pk__in": teams}
        )


OWN_TEAMS = OwnTeams


SEARCH_WORDS = 8
SEARCH_LENGTH = 200


def admin_search_words(term: str) -> tuple[list[str], str]:
    """The words an admin search looks for (quotes keep a phrase one word), and a line saying
    what was left out ("" if nothing)."""
    words = []
    for bit in smart_split(term[:SEARCH_LENGTH]):
        if bit[:1] in "\"'" and bit[-1:] == bit[:1] and len(bit) > 1:
            bit = unescape_string_literal(bit)
        if search_mode(bit):
            words.append(bit)
    cut = len(term) > SEARCH_LENGTH or len(words) > SEARCH_WORDS
    note = (
        f"Searched the first {SEARCH_WORDS} words of the first {SEARCH_LENGTH} characters."
        if cut
        else ""
    )
    return words[:SEARCH_WORDS], note


RELATED_KEYS = 1000


def _in_any(model, fields, word: str) -> Q:
    """`word` in any of `fields` (search_fields: "^name" at the start, "=name" exactly). A
    field of a related row ("account__name") is looked up in its own table first, so that
    each part of the OR reads an index (OR-ed across a join, every row of the list was joined
    and tested: 1.1 s to count a million contacts'); more than RELATED_KEYS related rows are
    joined as before."""
    either = Q()
    for field in fields:
        path = field.lstrip("^=")
        hop, _, rest = path.partition("__")
        relation = _field(model, hop) if rest else None
        if relation is None or not relation.many_to_one or "__" in rest:
            either |= _test(model, field, path, word)
            continue
        related = relation.related_model._default_manager
        test = _test(relation.related_model, field, rest, word)
        keys = list(related.filter(test).values_list("pk", flat=True)[: RELATED_KEYS + 1])
        if len(keys) > RELATED_KEYS:
            either |= _test(model, field, path, word)
        else:
            either |= Q(**{f"{hop}__in": keys})
    return either


def _test(model, field: str, path: str, word: str) -> Q:
    """`word` in `path` of `model`'s rows, as the CRM's lists look; as Django's admin looks
    in a field that holds no text (JSON: its text starts with a bracket, and PostgreSQL has
    no text to append to)."""
    if not _is_text(model, path):
        return Q(**{f"{path}__icontains": word})
    if field.startswith("="):
        return Q(**{f"{path}__iexact": word})
    if field.startswith("^"):
        return Q(**{f"{path}__istartswith": word})
    return Search((path,), word, search_mode(word)).q()


def _is_text(model, path: str) -> bool:
    try:
        last = get_fields_from_path(model, path)[-1]
    except (FieldDoesNotExist, NotRelationField):
        return False
    return isinstance(last, CharField | TextField)


def _field(model, name: str):
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:  # a reverse relation's query name: joined
        return None


class NewestFirstWhenSearched(ChangeList):
    """A search's results, newest first, unless a column is clicked: in a list sorted by
    name, a first name's rows are one block of it that PostgreSQL takes for spread along it,
    and it walked 675,000 contacts' names to them (6 s); newest first they are spread. The
    columns then show no sort arrow."""

    def _newest_first(self) -> bool:
        return bool(self.query.strip()) and ORDER_VAR not in self.params

    def get_ordering(self, request, queryset):
        return ["-pk"] if self._newest_first() else super().get_ordering(request, queryset)

    def get_ordering_field_columns(self):
        return {} if self._newest_first() else super().get_ordering_field_columns()


# Django counts a whole list on every page of it, and counts the table again beside a filtered
# list: at a million rows, 40 to 60 ms a count; a list is counted this far and no further.
ADMIN_COUNT_CAP = 10_000


class AtLeast(int):
    """A count that stopped at its cap, written "10,000+" wherever the admin shows a count
    (the pages, "N results", "Select all N"); a number to everything that compares it."""

    def __str__(self) -> str:
        return f"{int(self):,}+"


class CappedPaginator(Paginator):
    """The admin's pages of a list counted to ADMIN_COUNT_CAP rows at most: past it, the
    count is AtLeast(ADMIN_COUNT_CAP), and the pages end there (filters and the search
    narrow a longer list)."""

    @cached_property
    def count(self) -> int:
        counted = capped_count(self.object_list, ADMIN_COUNT_CAP)
        return AtLeast(ADMIN_COUNT_CAP) if counted > ADMIN_COUNT_CAP else counted


class VisibleRows:
    """Mixed into every ModelAdmin and inline. Django's permissions say which models a user
    may edit; the rows come from crm.visibility, as on every other page: a non-administrator
    lists, opens, changes, deletes, acts on and picks (foreign keys, autocomplete and raw-id
    lookups go through the related model's admin) only what the rule lets them see.

    The rule is `team_paths` (by default the model's TEAM_PATHS entry), or `rows_for` for a
    model with a rule of its own. Rows of no team (configuration, schedules, monitoring) say
    `company_wide = True`. A model with neither is for administrators only."""

    team_paths: tuple[str, ...] | None = None
    company_wide = False
    # Counted as far as a page needs (CappedPaginator), never the whole table again beside it.
    # A list of rows that grow with the business filters by date in its side bar (list_filter)
    # rather than a date_hierarchy, whose years and bounds are read from every row on every
    # page (a million invoices: 230 ms).
    # Nor does it count each filter's choices ("Show counts": every row read once a choice).
    paginator = CappedPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.company_wide and self.has_rule():
            raise ImproperlyConfigured(f"{type(self).__name__}: company-wide rows have no team")

    def has_rule(self) -> bool:
        return (
            self.team_paths is not None
            or self.model in TEAM_PATHS
            or type(self).rows_for is not VisibleRows.rows_for
        )

    def rows_for(self, user, queryset: QuerySet) -> QuerySet:
        """The rows of `queryset` a non-administrator may see."""
        paths = self.team_paths or TEAM_PATHS.get(queryset.model)
        if paths:
            return visible_to(user, queryset, paths)
        return queryset if self.company_wide else queryset.none()

    def visible_rows(self, user, queryset: QuerySet) -> QuerySet:
        return queryset if user.is_administrator else self.rows_for(user, queryset)

    def get_queryset(self, request):
        return self.visible_rows(request.user, super().get_queryset(request))

    def choices(self, request, queryset: QuerySet) -> QuerySet:
        """The related rows a user may pick: those the related model's admin lists for them."""
        related = self.admin_site._registry.get(queryset.model)
        if isinstance(related, VisibleRows):
            return related.visible_rows(request.user, queryset)
        user, paths = request.user, TEAM_PATHS.get(queryset.model)
        if user.is_administrator:
            return queryset
        return visible_to(user, queryset, paths) if paths else queryset.none()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and hasattr(field, "queryset"):
            field.queryset = self.choices(request, field.queryset)
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if field is not None and hasattr(field, "queryset"):
            field.queryset = self.choices(request, field.queryset)
        return field

    def _may_reach(self, request) -> bool:
        return is_administrator(request.user) or self.company_wide or self.has_rule()

    def has_module_permission(self, request):
        return self._may_reach(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._may_reach(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return self._may_reach(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return self._may_reach(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may_reach(request) and super().has_delete_permission(request, obj)

    def get_changelist(self, request, **kwargs):
        return NewestFirstWhenSearched

    def get_search_results(self, request, queryset, search_term):
        """Django's search, bounded as the CRM's: the first SEARCH_WORDS words of the first
        SEARCH_LENGTH characters (2,000 words took 81 s over a million contacts), each in any
        of search_fields as the lists look (crm.matching: inside from three letters or digits
        in a row, at the start for one or two, punctuation alone skipped), so that the
        search indexes read them."""
        fields = self.get_search_fields(request)
        words, cut = admin_search_words(search_term)
        if not fields or not search_term.strip():
            return queryset, False
        if not words:
            cut = f"Not searched: {PUNCTUATION_ALONE}"
        # Said once, on the list (an autocomplete's note would show on the next page).
        if cut and SEARCH_VAR in request.GET and not getattr(request, "search_noted", False):
            messages.warning(request, cut)
            request.search_noted = True
        found = Q()
        for word in words:
            found &= _in_any(self.model, fields, word)
        spawns = any(lookup_spawns_duplicates(self.opts, field.lstrip("^=")) for field in fields)
        found_rows = queryset.filter(found)
        if request.resolver_match and request.resolver_match.url_name == "autocomplete":
            found_rows = found_rows.order_by("-pk")  # as NewestFirstWhenSearched
        return found_rows, spawns


class ReadOnlyAdmin(VisibleRows, admin.ModelAdmin):
    """Records the system writes: listed and searched here, never added or edited."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class AuditAdmin(ReadOnlyAdmin):
    """An audit trail: not deleted either."""

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(VisibleRows, BaseUserAdmin):
    list_display = (
        "username",
        "email",
        "first_name",
        "last_name",
        "role",
        "team",
        "manager",
        "is_active",
    )
    list_filter = ("role", ("team", OWN_TEAMS), "is_active", "is_staff")
    list_select_related = ("team", "manager")
    autocomplete_fields = ("team", "manager")
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        ("CRM", {"fields": ("role", "team", "manager", "time_zone")}),
        (
            "Working hours",
            {"fields": ("work_days", "day_starts", "day_ends", "alerts_at_once", "morning_digest")},
        ),
    )

    # What makes a user more than their team's member: only administrators set it, or a
    # manager could make themselves (or a colleague) an administrator and see everything.
    PRIVILEGES = ("role", "team", "is_staff", "is_superuser", "groups", "user_permissions")

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if is_administrator(request.user) else fields + self.PRIVILEGES

    def get_form(self, request, obj=None, **kwargs):
        # The same list as the user's own settings page, with this user's current zone in it.
        zone = time_zone_select(obj.time_zone if obj else "")
        kwargs["widgets"] = {**kwargs.get("widgets", {}), "time_zone": zone}
        return super().get_form(request, obj, **kwargs)


@admin.register(Team)
class TeamAdmin(VisibleRows, admin.ModelAdmin):
    list_display = ("name", "kind", "holiday_country", "holiday_subdivision", "shift")
    list_filter = ("kind",)
    search_fields = ("name",)
    ordering = ("name", "pk")  # autocomplete pages through it

    def rows_for(self, user, queryset):
        return teams_visible_to(user, queryset)

    def get_readonly_fields(self, request, obj=None):
        # A team's holiday region and shifts move its people's deadlines: administrators
        # set them.
        fields = tuple(super().get_readonly_fields(request, obj))
        if is_administrator(request.user):
            return fields
        return (*fields, "holiday_country", "holiday_subdivision", *self.SHIFT)

    SHIFT = ("work_days", "day_starts", "day_ends")

    @admin.display(description="Shift")
    def shift(self, team):
        if team.day_starts is None or team.day_ends is None:
            return "The company's"
        days = team.work_days or "company's days"
        return f"{days} {team.day_starts:%H:%M}–{team.day_ends:%H:%M}"


@admin.register(CalendarFeed)
class CalendarFeedAdmin(VisibleRows, admin.ModelAdmin):
    """Feeds are made on Settings; here they are only seen and revoked (a leaked address)."""

    team_paths = ("user__team",)
    list_display = ("user", "created_at", "last_read_at")
    list_select_related = ("user",)
    readonly_fields = ("user", "created_at", "last_read_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WorkingCalendar)
class WorkingCalendarAdmin(VisibleRows, admin.ModelAdmin):
    company_wide = True
    list_display = ("__str__", "enabled", "work_days", "day_starts", "day_ends")

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not WorkingCalendar.objects.exists()


@admin.register(Holiday)
class HolidayAdmin(VisibleRows, admin.ModelAdmin):
    list_display = ("date", "name", "team")
    list_filter = (("team", OWN_TEAMS),)
    date_hierarchy = "date"
    autocomplete_fields = ("team",)

    def rows_for(self, user, queryset):
        # The company's days off, and one's own team's.
        return queryset.filter(Q(team=None) | Q(team_id=user.team_id))

    # Only administrators set the company's days off; others add and change their own team's.
    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if not is_administrator(request.user) and "team" in form.base_fields:
            team = form.base_fields["team"]
            team.required = True
            team.queryset = Team.objects.filter(pk=request.user.team_id)  # type: ignore[attr-defined]
        return form

    def _own(self, request, obj) -> bool:
        if is_administrator(request.user) or obj is None:
            return True
        return obj.team_id is not None and obj.team_id == request.user.team_id

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._own(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._own(request, obj)


@admin.register(Absence)
class AbsenceAdmin(VisibleRows, admin.ModelAdmin):
    list_display = ("user", "kind", "first_day", "last_day", "delegate", "recorded_by")
    list_filter = ("kind",)
    list_select_related = ("user", "delegate", "recorded_by")
    autocomplete_fields = ("user", "delegate")
    date_hierarchy = "first_day"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.recorded_by = request.user
        super().save_model(request, obj, form, change)

    # The Away page's rules (crm.absences): whose absence one records, changes and removes,
    # and who records days already gone.
    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = absences.recordable_for(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or absences.may_remove(request.user, obj))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or absences.may_remove(request.user, obj))

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        recorder = request.user

        class Recorded(form):  # type: ignore[valid-type,misc]
            def clean(self):
                cleaned = super().clean()
                first_day, absent = cleaned.get("first_day"), cleaned.get("user")
                if first_day and not absences.may_backdate(recorder, absent, first_day):
                    self.add_error("first_day", absences.PAST_DAYS)
                return cleaned

        return Recorded


@admin.register(Account)
class AccountAdmin(VisibleRows, admin.ModelAdmin):
    list_display = ("name", "account_manager", "team", "created_at")
    list_filter = (("team", OWN_TEAMS),)
    list_select_related = ("account_manager", "team")
    search_fields = ("name",)
    ordering = ("name", "pk")  # autocomplete pages through it
    autocomplete_fields = ("account_manager", "team")


class ContactStatusChangeInline(VisibleRows, admin.TabularInline):
    """A contact's status changes (its audit trail): read here, written by the contact page."""

    model = ContactStatusChange
    team_paths = ("contact__account__team",)
    fields = ("at", "by", "from_status", "to_status", "reason")
    readonly_fields = fields
    ordering = ("-at", "-pk")
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("by")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Contact)
class ContactAdmin(VisibleRows, admin.ModelAdmin):
    list_display = ("name", "email", "account", "status")
    list_filter = ("status",)
    list_select_related = ("account",)
    search_fields = ("name", "email", "account__name")
    ordering = ("name", "pk")  # autocomplete pages through it
    autocomplete_fields = ("account",)
    inlines = (ContactStatusChangeInline,)


@admin.register(RPH)
class RPHAdmin(VisibleRows, admin.ModelAdmin):
    list_display = ("name", "company", "email", "owner", "status", "status_changed_at")
    list_filter = ("status", "status_changed_at")
    list_select_related = ("owner",)
    search_fields = ("name", "company", "email")
    autocomplete_fields = ("contact", "owner")


@admin.register(Opportunity)
class OpportunityAdmin(VisibleRows, admin.ModelAdmin):
    list_display = ("name", "account", "owner", "stage", "amount", "expected_close")
    list_filter = ("stage", "expected_close")
    list_select_related = ("account", "owner")
    search_fields = ("name", "account__name")
    ordering = ("name", "pk")  # autocomplete pages through it
    autocomplete_fields = ("account", "owner")


@admin.register(Task)
class TaskAdmin(VisibleRows, admin.ModelAdmin):
    list_display = ("title", "kind", "owner", "account", "due_at", "status")
    list_filter = ("status", "kind", "due_at")
    list_select_related = ("owner", "account")
    search_fields = ("title", "account__name")
    autocomplete_fields = ("owner", "account", "opportunity")


@admin.register(Event)
class EventAdmin(VisibleRows, admin.ModelAdmin):
    list_display = ("title", "owner", "account", "start_at", "end_at")
    list_filter = ("start_at",)
    list_select_related = ("owner", "account")
    search_fields = ("title", "account__name")
    autocomplete_fields = ("owner", "account")


@admin.register(Dispatch)
class DispatchAdmin(VisibleRows, admin.ModelAdmin):
    list_display = ("title", "team", "owner", "scheduled_at", "due_at", "status")
    list_filter = ("status", ("team", OWN_TEAMS), "due_at")
    list_select_related = ("team", "owner")
    search_fields = ("title", "account__name")
    autocomplete_fields = ("team", "owner", "account")


# --- Job engine ---------------------------------------------------------------------------


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    company_wide = True
    list_display = (
        "job",
        "trigger",
        "as_of",
        "status",
        "counts",
        "missed_slots",
        "dry_run",
        "started_at",
        "duration_s",
        "host",
    )
    list_filter = ("status", "trigger", "job", "dry_run")
    search_fields = ("job", "error")
    date_hierarchy = "started_at"


@admin.register(JobLock)
class JobLockAdmin(ReadOnlyAdmin):
    company_wide = True
    list_display = ("job", "holder", "acquired_at", "expires_at")


# Third-party admins: the schedules and permission groups are the company's, not a team's.
for model in (Group, ClockedSchedule, CrontabSchedule, IntervalSchedule, SolarSchedule):
    base = type(admin.site.get_model_admin(model))
    admin.site.unregister(model)
    admin.site.register(model, type(base.__name__, (VisibleRows, base), {"company_wide": True}))

admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(VisibleRows, BeatPeriodicTaskAdmin):
    """Beat's schedule admin with each job's last run, status and next run from the ledger,
    plus "Run now" for Vigil's jobs."""

    company_wide = True

    list_display = ("name", "enabled", "schedule", "last_run", "last_status", "next_run")
    list_filter = ()  # a few tasks: the filter column would only narrow the table
    actions = [*BeatPeriodicTaskAdmin.actions, "run_now"]

    class Media:
        css = {"all": ["pages.css"]}

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                ledger_started_at=ledger.latest_run("started_at"),
                ledger_status=ledger.latest_run("status"),
            )
        )

    @admin.display(description="Schedule")
    def schedule(self, task):
        if task.crontab is None:
            return str(task.schedule) if task.interval or task.solar or task.clocked else "-"
        return f"{ledger.crontab_expression(task.crontab)} {task.crontab.timezone}"

    @admin.display(description="Last run", ordering="ledger_started_at")
    def last_run(self, task):
        return dates.when(task.ledger_started_at) or ledger.NEVER

    @admin.display(description="Status")
    def last_status(self, task):
        return ledger.status(task.name, task.ledger_status, timezone.now())

    @admin.display(description="Next run")
    def next_run(self, task):
        if task.crontab is None:
            return "-"
        expression, tz = ledger.crontab_expression(task.crontab), str(task.crontab.timezone)
        moment = ledger.next_run(expression, tz, task.enabled, timezone.now())
        return dates.when(moment) if moment else "-"

    @admin.action(description="Run now (in the background)", permissions=["change"])
    def run_now(self, request, queryset):
        known = {job.name for job in registry.all_jobs()}
        names = [name for name in queryset.values_list("name", flat=True) if name in known]
        as_of = timezone.now().isoformat()
        for name in names:
            run_job_now.delay_on_commit(name, as_of)
        if names:
            self.message_user(request, f"Queued: {', '.join(names)}. See Job runs for results.")
        else:
            self.message_user(
                request, "None of the selected tasks is a Vigil job.", messages.WARNING
            )
