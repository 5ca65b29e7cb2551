from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils import timezone
from django_celery_beat.admin import PeriodicTaskAdmin as BeatPeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from crm import dates, ledger, registry
from crm.forms import time_zone_select
from crm.models import (
    RPH,
    Account,
    Contact,
    Dispatch,
    Event,
    JobLock,
    JobRun,
    Opportunity,
    Task,
    Team,
    User,
)
from crm.tasks import run_job_now


class ReadOnlyAdmin(admin.ModelAdmin):
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
class UserAdmin(BaseUserAdmin):
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
    list_filter = ("role", "team", "is_active", "is_staff")
    list_select_related = ("team", "manager")
    autocomplete_fields = ("team", "manager")
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        ("CRM", {"fields": ("role", "team", "manager", "time_zone")}),
    )

    def get_form(self, request, obj=None, **kwargs):
        # The same list as the user's own settings page, with this user's current zone in it.
        zone = time_zone_select(obj.time_zone if obj else "")
        kwargs["widgets"] = {**kwargs.get("widgets", {}), "time_zone": zone}
        return super().get_form(request, obj, **kwargs)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "kind")
    list_filter = ("kind",)
    search_fields = ("name",)


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("name", "account_manager", "team", "created_at")
    list_filter = ("team",)
    list_select_related = ("account_manager", "team")
    search_fields = ("name",)
    autocomplete_fields = ("account_manager", "team")


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "account", "status")
    list_filter = ("status",)
    list_select_related = ("account",)
    search_fields = ("name", "email", "account__name")
    autocomplete_fields = ("account",)


@admin.register(RPH)
class RPHAdmin(admin.ModelAdmin):
    list_display = ("name", "company", "email", "owner", "status", "status_changed_at")
    list_filter = ("status",)
    list_select_related = ("owner",)
    search_fields = ("name", "company", "email")
    autocomplete_fields = ("contact", "owner")
    date_hierarchy = "status_changed_at"


@admin.register(Opportunity)
class OpportunityAdmin(admin.ModelAdmin):
    list_display = ("name", "account", "owner", "stage", "amount", "expected_close")
    list_filter = ("stage",)
    list_select_related = ("account", "owner")
    search_fields = ("name", "account__name")
    autocomplete_fields = ("account", "owner")
    date_hierarchy = "expected_close"


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("title", "kind", "owner", "account", "due_at", "status")
    list_filter = ("status", "kind")
    list_select_related = ("owner", "account")
    search_fields = ("title", "account__name")
    autocomplete_fields = ("owner", "account", "opportunity")
    date_hierarchy = "due_at"


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "account", "start_at", "end_at")
    list_select_related = ("owner", "account")
    search_fields = ("title", "account__name")
    autocomplete_fields = ("owner", "account")
    date_hierarchy = "start_at"


@admin.register(Dispatch)
class DispatchAdmin(admin.ModelAdmin):
    list_display = ("title", "team", "owner", "scheduled_at", "due_at", "status")
    list_filter = ("status", "team")
    list_select_related = ("team", "owner")
    search_fields = ("title", "account__name")
    autocomplete_fields = ("team", "owner", "account")
    date_hierarchy = "due_at"


# --- Job engine ---------------------------------------------------------------------------


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
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
    list_display = ("job", "holder", "acquired_at", "expires_at")


admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(BeatPeriodicTaskAdmin):
    """Beat's schedule admin with each job's last run, status and next run from the ledger,
    plus "Run now" for Vigil's jobs."""

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
