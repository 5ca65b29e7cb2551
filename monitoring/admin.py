from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html

from crm.admin import ReadOnlyAdmin, is_administrator
from monitoring.models import BugReport, ErrorEvent


class RegressionFilter(admin.SimpleListFilter):
    title = "regression"
    parameter_name = "regression"

    def lookups(self, request, model_admin):
        return [("yes", "Came back after it was resolved")]

    def queryset(self, request, queryset):
        return queryset.filter(regression=True) if self.value() == "yes" else queryset


@admin.register(ErrorEvent)
class ErrorEventAdmin(ReadOnlyAdmin):
    company_wide = True
    list_display = ("title", "flags", "count", "first_seen", "last_seen", "logger", "status")
    list_filter = ("status", RegressionFilter, "level", "logger")
    search_fields = ("title", "message", "location", "exception_type", "logger", "fingerprint")
    date_hierarchy = "last_seen"
    actions = ["mark_resolved"]
    fields = (
        "title",
        "status",
        "regression",
        "count",
        "first_seen",
        "last_seen",
        "reopened_at",
        "resolved_at",
        "resolved_by",
        "logger",
        "level",
        "exception_type",
        "location",
        "message",
        "context",
        "sample_traceback",
        "fingerprint",
    )
    readonly_fields = fields

    @admin.display(description="")
    def flags(self, obj: ErrorEvent) -> str:
        return "regression" if obj.regression else ""

    @admin.display(description="Traceback")
    def sample_traceback(self, obj: ErrorEvent) -> str:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', obj.traceback)

    @admin.action(description="Mark resolved", permissions=["resolve"])
    def mark_resolved(self, request, queryset):
        resolved = queryset.exclude(status=ErrorEvent.Status.RESOLVED).update(
            status=ErrorEvent.Status.RESOLVED,
            resolved_at=timezone.now(),
            resolved_by=request.user,
            regression=False,
        )
        self.message_user(
            request,
            f"{resolved} error event(s) marked resolved. One that happens again is reopened "
            "and flagged as a regression.",
        )

    def has_resolve_permission(self, request) -> bool:
        user = request.user
        return is_administrator(user) or user.has_perm("monitoring.change_errorevent")


@admin.register(BugReport)
class BugReportAdmin(ReadOnlyAdmin):
    company_wide = True
    list_display = ("day", "subject", "all_clear")
    list_filter = ("all_clear",)
    date_hierarchy = "day"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        report = self.get_object(request, object_id)
        if report is None or not self.has_view_permission(request, report):
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        context = {**self.admin_site.each_context(request), "report": report, "opts": self.opts}
        return TemplateResponse(request, "admin/monitoring/bugreport/report.html", context)
