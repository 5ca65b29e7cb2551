from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from crm.admin import VisibleRows
from crm.models import RPH
from nurture import sending, windows
from nurture.models import EmailTemplate, Enrollment, SendSettings, SentStep, Sequence, Step


class StepInline(VisibleRows, admin.TabularInline):
    model = Step
    company_wide = True
    extra = 1
    fields = ("order", "template", "wait_days")
    ordering = ("order", "pk")


@admin.register(Sequence)
class SequenceAdmin(VisibleRows, admin.ModelAdmin):
    company_wide = True
    list_display = ("name", "active", "step_count", "final_wait_days")
    inlines = [StepInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(step_total=Count("steps"))

    @admin.display(description="Steps", ordering="step_total")
    def step_count(self, obj):
        return obj.step_total


class PreviewForm(forms.Form):
    rph = forms.ModelChoiceField(
        queryset=RPH.objects.select_related("owner", "contact"),
        label="RPH lead",
        help_text="Render the template for this lead.",
    )

    def __init__(self, *args, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        rel = Enrollment._meta.get_field("rph").remote_field
        self.fields["rph"].widget = ForeignKeyRawIdWidget(rel, admin_site)


@admin.register(EmailTemplate)
class EmailTemplateAdmin(VisibleRows, admin.ModelAdmin):
    company_wide = True
    list_display = ("name", "subject", "updated_at", "preview_link")
    search_fields = ("name", "subject", "body")
    readonly_fields = ("preview_link",)

    def get_urls(self):
        view = self.admin_site.admin_view(self.preview_view)
        return [
            path("<int:pk>/preview/", view, name="nurture_emailtemplate_preview"),
            *super().get_urls(),
        ]

    @admin.display(description="Preview")
    def preview_link(self, obj):
        if obj is None or not obj.pk:
            return "Save the template to preview it."
        url = reverse("admin:nurture_emailtemplate_preview", args=[obj.pk])
        return format_html('<a href="{}">Preview for a lead</a>', url)

    def preview_view(self, request, pk: int):
        """The template rendered for a real lead, as the run would send it."""
        template = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_view_permission(request, template):
            raise PermissionDenied
        form = PreviewForm(request.GET or None, admin_site=self.admin_site)
        form.fields["rph"].queryset = self.choices(request, form.fields["rph"].queryset)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview: {template}",
            "template": template,
            "opts": self.model._meta,
            "form": form,
        }
        if form.is_valid():
            rph = form.cleaned_data["rph"]
            address = sending.address_of(rph)
            fields = sending.merge_fields(rph, address or "lead@example.com")
            try:
                context["subject"], context["html"], context["text"] = sending.render(
                    template.subject, template.body, fields
                )
            except Exception as exc:  # noqa: BLE001 - shown to the administrator
                context["error"] = f"{type(exc).__name__}: {exc}"
            context.update(rph=rph, address=address)
        return TemplateResponse(request, "admin/nurture/preview.html", context)


class SentStepInline(VisibleRows, admin.TabularInline):
    model = SentStep
    team_paths = ("enrollment__rph__owner__team",)
    extra = 0
    can_delete = False
    fields = readonly_fields = ("step", "at", "outbox_key", "skipped")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Enrollment)
class EnrollmentAdmin(VisibleRows, admin.ModelAdmin):
    team_paths = ("rph__owner__team",)
    list_display = ("rph", "sequence", "status", "step", "next_due_at", "stop_reason")
    list_filter = ("status", "sequence")
    list_select_related = ("rph", "sequence", "step__template")
    search_fields = ("rph__name", "rph__email", "rph__company")
    readonly_fields = (
        "rph",
        "sequence",
        "step",
        "enrolled_at",
        "next_due_at",
        "last_run_at",
        "status",
        "stop_reason",
        "stopped_at",
        "last_error",
        "paused_until",
        "pause_reason",
        "delivery_note",
        "send_after",
        "send_until",
    )
    inlines = [SentStepInline]

    def has_add_permission(self, request):
        return False  # leads are enrolled by entering Nurture P2


@admin.register(SendSettings)
class SendSettingsAdmin(VisibleRows, admin.ModelAdmin):
    company_wide = True
    list_display = ("__str__", "window", "window_days", "window_starts", "window_ends")
    fieldsets = (
        ("Send window", {"fields": ("window", "window_days", "window_starts", "window_ends")}),
        ("Holidays", {"fields": ("skip_holidays",)}),
        ("Hourly caps", {"fields": ("domain_hourly_cap", "mailbox_hourly_cap")}),
    )

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not SendSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False  # switch the window off instead: that also empties the stored windows

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if obj.window and (warning := windows.schedule_warning()):
            self.message_user(request, warning, messages.WARNING)
