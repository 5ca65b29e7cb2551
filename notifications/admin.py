from django.contrib import admin

from crm.admin import AuditAdmin, VisibleRows
from notifications.models import AlertSettings, AuditEvent, Notification, OverdueAlert, ReminderRule


@admin.register(ReminderRule)
class ReminderRuleAdmin(VisibleRows, admin.ModelAdmin):
    company_wide = True
    list_display = (
        "name",
        "object_kind",
        "trigger",
        "statuses",
        "lead_time",
        "blocking",
        "grace_period",
        "active",
    )
    list_filter = ("object_kind", "trigger", "blocking", "active")
    search_fields = ("name",)
    fieldsets = (
        (None, {"fields": ("name", "active", "object_kind", "trigger", "statuses")}),
        ("When", {"fields": ("lead_time", "untouched_days")}),
        ("Who", {"fields": ("notify_owner", "notify_manager", "notify_account_manager")}),
        ("Compliance", {"fields": ("blocking", "grace_period")}),
        (
            "Escalation before the block",
            {"fields": ("remind_when_due", "manager_copy_at")},
        ),
    )


@admin.register(Notification)
class NotificationAdmin(VisibleRows, admin.ModelAdmin):
    team_paths = ("user__team",)
    list_display = (
        "title",
        "user",
        "object_kind",
        "object_id",
        "blocking",
        "status",
        "expires_at",
        "grace_deadline",
        "created_at",
    )
    list_filter = ("status", "blocking", "object_kind", "rule", "created_at")
    list_select_related = ("user",)
    search_fields = ("title", "user__username")
    raw_id_fields = ("user", "rule")


@admin.register(AuditEvent)
class AuditEventAdmin(AuditAdmin):
    team_paths = ("user__team",)
    list_display = ("at", "user", "action", "actor", "notification", "detail")
    list_filter = ("action", "at")
    list_select_related = ("user", "actor", "notification")
    search_fields = ("user__username", "actor__username", "detail")


@admin.register(AlertSettings)
class AlertSettingsAdmin(VisibleRows, admin.ModelAdmin):
    company_wide = True
    list_display = ("__str__", "threshold", "working_time", "hold_off_duty")
    filter_horizontal = ("recipients",)

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not AlertSettings.objects.exists()


@admin.register(OverdueAlert)
class OverdueAlertAdmin(VisibleRows, admin.ModelAdmin):
    team_paths = ("owner__team",)
    list_display = ("title", "object_kind", "object_id", "owner", "due_at", "alerted_at")
    list_filter = ("object_kind", "alerted_at")
    list_select_related = ("owner",)
    search_fields = ("title",)

    def has_add_permission(self, request):
        return False
