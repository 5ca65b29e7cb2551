from django.contrib import admin
from django.utils import timezone

from mailsync.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = (
        "subject",
        "recipients",
        "source",
        "status",
        "attempts",
        "last_error",
        "next_attempt_at",
        "sent_at",
        "created_at",
    )
    list_filter = ("status", "source")
    search_fields = ("subject", "key", "message_id", "to")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]
    actions = ["retry_now"]

    @admin.display(description="To")
    def recipients(self, obj):
        return ", ".join(obj.to)

    @admin.action(description="Retry now", permissions=["change"])
    def retry_now(self, request, queryset):
        retried = queryset.exclude(status=OutboxMessage.Status.SENT).update(
            status=OutboxMessage.Status.QUEUED, next_attempt_at=timezone.now(), claimed_until=None
        )
        self.message_user(request, f"{retried} message(s) queued for the next send.")

    def has_add_permission(self, request):
        return False
