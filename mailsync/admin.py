from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Lower, Trim
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from crm.admin import AuditAdmin, ReadOnlyAdmin, VisibleRows, is_administrator
from crm.models import RPH, Contact
from mailsync import backlog, suppression
from mailsync.models import (
    BacklogEmail,
    Mailbox,
    OutboxMessage,
    Suppression,
    SuppressionLift,
    TrackingEvent,
)
from mailsync.parsing import message_key_for


@admin.register(OutboxMessage)
class OutboxMessageAdmin(VisibleRows, admin.ModelAdmin):
    """Every team's outgoing mail: for administrators only (it has no team of its own)."""

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
    list_filter = ("status", "source", "created_at")
    search_fields = ("subject", "key", "message_id", "to")
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


class SuppressionForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ("address", "reason")

    def clean_address(self) -> str:
        return suppression.normalise(self.cleaned_data["address"])


class LiftForm(forms.Form):
    why = forms.CharField(
        label="Why lift it",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Kept in the audit with your name and the time.",
    )


class ActiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Suppressed"), ("lifted", "Lifted")]

    def queryset(self, request, queryset):
        if self.value() in ("active", "lifted"):
            return queryset.filter(lifted_at__isnull=self.value() == "active")
        return queryset


@admin.register(Suppression)
class SuppressionAdmin(VisibleRows, admin.ModelAdmin):
    company_wide = True  # one list for the company: an address is refused for everyone
    form = SuppressionForm
    list_display = ("address", "source", "reason", "created_at", "lifted_at")
    list_filter = (ActiveFilter, "source", "created_at")
    search_fields = ("address", "reason")
    actions = ["lift_suppressions"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:  # adding by hand: an address and a reason
            return ("source", "created_at", "lifted_at")
        return ("address", "source", "reason", "created_at", "lifted_at")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.source = Suppression.Source.MANUAL
            obj.created_at = timezone.now()
        super().save_model(request, obj, form, change)

    def has_lift_permission(self, request) -> bool:
        user = request.user
        return is_administrator(user) or user.has_perm("mailsync.lift_suppression")

    @admin.action(description="Lift the selected suppressions…", permissions=["lift"])
    def lift_suppressions(self, request, queryset):
        form = LiftForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            lifted = suppression.lift(
                queryset, request.user, form.cleaned_data["why"], timezone.now()
            )
            self.message_user(request, f"{lifted} suppression(s) lifted.")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Lift suppressions",
            "opts": self.model._meta,
            "form": form,
            "suppressions": queryset.filter(lifted_at__isnull=True),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/mailsync/suppression/lift.html", context)


@admin.register(SuppressionLift)
class SuppressionLiftAdmin(AuditAdmin):
    company_wide = True
    list_display = ("address", "lifted_by", "lifted_at", "why", "previous_source")
    list_filter = ("previous_source",)
    search_fields = ("address", "why", "lifted_by__username")
    date_hierarchy = "lifted_at"
    readonly_fields = [f.name for f in SuppressionLift._meta.fields]


@admin.register(TrackingEvent)
class TrackingEventAdmin(ReadOnlyAdmin):
    company_wide = True
    list_display = ("recipient", "event_type", "esp", "event_id", "received_at")
    list_filter = ("event_type", "esp")
    search_fields = ("recipient", "event_id")
    readonly_fields = [f.name for f in TrackingEvent._meta.fields]


# Contacts and RPH leads, as crm registers them, plus whether their address is suppressed.
# (crm imports no app, so the column is added here.)


class SuppressedFilter(admin.SimpleListFilter):
    title = "suppressed"
    parameter_name = "suppressed"

    def lookups(self, request, model_admin):
        return [("yes", "Suppressed"), ("no", "Not suppressed")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(suppression_reason__isnull=self.value() == "no")
        return queryset


class ShowsSuppression(admin.ModelAdmin):
    """The list's column and filter match in SQL on the trimmed, lower-cased address, so an
    address with an IDN domain is matched exactly on its page and in the column, not by the
    filter."""

    def get_queryset(self, request):
        listed = suppression.active().filter(address=Lower(Trim(OuterRef("email"))))
        return (
            super()
            .get_queryset(request)
            .annotate(suppression_reason=Subquery(listed.values("reason")[:1]))
        )

    @admin.display(description="Suppressed")
    def suppressed(self, obj) -> str:
        reason = getattr(obj, "suppression_reason", None)
        if reason is None and obj.email and not obj.email.isascii():
            reason = suppression.suppressed([obj.email]).get(suppression.normalise(obj.email))
        return reason or "—"

    @admin.display(description="Email suppression")
    def suppression(self, obj) -> str:
        row = suppression.listing(obj.email) if obj and obj.email else None
        if row is None:
            return "Not suppressed"
        url = reverse("admin:mailsync_suppression_change", args=[row.pk])
        return format_html(
            "Suppressed since {} ({}): {} · <a href='{}'>lift it</a>",
            f"{timezone.localtime(row.created_at):%Y-%m-%d}",
            row.get_source_display(),
            row.reason,
            url,
        )


def _with_suppression(base: type[admin.ModelAdmin]) -> type[admin.ModelAdmin]:
    return type(
        base.__name__,
        (ShowsSuppression, base),
        {
            "list_display": (*base.list_display, "suppressed"),
            "list_filter": (*base.list_filter, SuppressedFilter),
            "readonly_fields": (*base.readonly_fields, "suppression"),
        },
    )


for model in (Contact, RPH):
    base = type(admin.site.get_model_admin(model))
    admin.site.unregister(model)
    admin.site.register(model, _with_suppression(base))


@admin.register(Mailbox)
class MailboxAdmin(ReadOnlyAdmin):
    """Users' mailboxes, to see which sync and which fail. Their secret and access token are
    never shown; an owner connects, reconnects and removes a mailbox on the Mailboxes page."""

    team_paths = ("owner__team",)
    list_display = ("address", "owner", "provider", "status", "last_synced_at", "last_error")
    list_filter = ("status", "provider")
    list_select_related = ("owner",)
    search_fields = ("address", "owner__username")
    exclude = ("secret", "access_token")
    readonly_fields = [
        f.name for f in Mailbox._meta.fields if f.name not in ("id", "secret", "access_token")
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("secret", "access_token")


@admin.register(BacklogEmail)
class BacklogEmailAdmin(ReadOnlyAdmin):
    """The email backlog, to find an email and see how it was seen and read. Bodies are shown
    as text (the HTML was sanitised when stored); the raw message, kept for an email whose
    parse noted a problem (for `reparse_emails`), is not shown."""

    list_display = ("subject", "from_address", "direction", "sent_from_crm", "date", "unparsed")
    list_filter = ("direction", "sent_from_crm", "unparsed", "date")
    search_fields = ("subject", "from_address", "message_id")
    exclude = ("raw",)
    readonly_fields = [f.name for f in BacklogEmail._meta.fields if f.name not in ("id", "raw")]

    def rows_for(self, user, queryset):
        return queryset.filter(backlog.visible_to(user))

    def get_queryset(self, request):
        return super().get_queryset(request).defer("raw", "text_body", "html_body")

    def get_search_results(self, request, queryset, search_term):
        """An email by its Message-ID (as the backlog keys it), else the email list's search
        (backlog.searched: the search document's index): the subject, addresses and text had
        no index, and a word was looked for in each of a million emails (2.3 s)."""
        if not search_term.strip():
            return queryset, False
        key = message_key_for(search_term.strip()[:998])
        if key and queryset.filter(message_key=key).exists():
            return queryset.filter(message_key=key), False
        return backlog.searched(queryset, backlog.search_words(search_term)), False
