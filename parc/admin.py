from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from crm.admin import OWN_TEAMS, VisibleRows, is_administrator
from crm.models import Team, User
from parc import schedule
from parc.forms import ScheduleForm
from parc.models import Agreement, ParcSettings, ParcVisit
from parc.plans import PlanError, next_visits


class ManagersMayEdit(VisibleRows):
    """Administrators and managers (staff) edit PARC agreements, a manager their own team's
    only; nobody else sees them."""

    def _allowed(self, request) -> bool:
        user = request.user
        return (
            user.is_active
            and user.is_staff
            and (user.is_administrator or user.role == User.Role.MANAGER)
        )

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request)

    def has_add_permission(self, request, *args):
        return self._allowed(request)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request)


class ParcVisitInline(ManagersMayEdit, admin.TabularInline):
    model = ParcVisit
    team_paths = ("agreement__account__team",)
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "visit_date",
        "late",
        "generated_at",
        "opportunity",
        "inspection",
        "follow_up",
        "dispatch",
    )
    ordering = ("-visit_date",)

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Agreement)
class AgreementAdmin(ManagersMayEdit, admin.ModelAdmin):
    team_paths = ("account__team",)
    list_display = ("account", "plan", "first_visit", "end_date", "visiting_team", "active")
    list_filter = ("active", ("visiting_team", OWN_TEAMS))
    list_select_related = ("account", "visiting_team")
    search_fields = ("account__name", "plan", "notes")
    readonly_fields = ("upcoming_visits",)
    inlines = [ParcVisitInline]
    fieldsets = (
        (None, {"fields": ("account", "account_manager", "visiting_team", "active")}),
        (
            "Visits",
            {
                "fields": (
                    "plan",
                    "upcoming_visits",
                    "first_visit",
                    "end_date",
                    "visit_time",
                    "visit_duration",
                )
            },
        ),
        (
            "What each visit creates",
            {
                "fields": (
                    "inspection_offset_days",
                    "follow_up_working_days",
                    "opportunity_name",
                    "opportunity_amount",
                )
            },
        ),
        (None, {"fields": ("notes",)}),
    )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "account_manager":
            kwargs["queryset"] = User.objects.filter(
                role__in=[User.Role.MANAGER, User.Role.ADMIN], is_active=True
            )
        if db_field.name == "visiting_team":
            kwargs["queryset"] = Team.objects.filter(kind=Team.Kind.VISITING)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="First five visits")
    def upcoming_visits(self, obj):
        if obj is None or not obj.pk:
            return "Shown once saved."
        return _first_visits(obj)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        self.message_user(
            request, f"Next five visits of {obj.account}: {_first_visits(obj)}.", messages.INFO
        )


def _first_visits(agreement: Agreement) -> str:
    try:
        days = next_visits(agreement.plan, agreement.first_visit, visit_time=agreement.visit_time)
    except PlanError as exc:
        return str(exc)
    return ", ".join(f"{d:%a %d %b %Y}" for d in days)


class AdministratorsOnly(VisibleRows):
    """For administrators (User.is_administrator, as everywhere in the app), whatever their
    Django permissions."""

    def has_module_permission(self, request):
        return is_administrator(request.user)

    def has_view_permission(self, request, obj=None):
        return is_administrator(request.user)

    def has_change_permission(self, request, obj=None):
        return is_administrator(request.user)


@admin.register(ParcSettings)
class ParcSettingsAdmin(AdministratorsOnly, admin.ModelAdmin):
    list_display = ("__str__", "horizon_days")

    def get_urls(self):
        view = self.admin_site.admin_view(self.schedule_view)
        return [path("schedule/", view, name="parc_schedule"), *super().get_urls()]

    def schedule_view(self, request):
        """Day and time of the PARC run: the crontab of its periodic task, for administrators."""
        if not request.user.is_administrator:
            raise PermissionDenied
        now = schedule.current()
        initial = {"day": now[0], "time": now[1]} if now else {}
        form = ScheduleForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            schedule.set_weekly(form.cleaned_data["day"], form.cleaned_data["time"])
            day = dict(schedule.DAYS)[form.cleaned_data["day"]]
            at = form.cleaned_data["time"].strftime("%H:%M")
            self.message_user(request, f"PARC now runs every {day} at {at} ({settings.TIME_ZONE}).")
            return redirect("admin:parc_schedule")
        context = {
            **self.admin_site.each_context(request),
            "title": "PARC schedule",
            "form": form,
            "time_zone": settings.TIME_ZONE,
            "expert": None if now else schedule.expression(),
        }
        return TemplateResponse(request, "admin/parc/schedule.html", context)

    def has_add_permission(self, request):
        return request.user.is_administrator and not ParcSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False
