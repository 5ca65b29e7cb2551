import csv

from django.contrib import admin
from django.http import StreamingHttpResponse

from crm.admin import ReadOnlyAdmin, VisibleRows
from finance.models import Invoice, Payment, PenaltyAccrual, PenaltyPolicy

CSV_COLUMNS = [
    "number",
    "account",
    "voucher_date",
    "due_date",
    "days_overdue",
    "amount",
    "debt",
    "penalty",
    "total_due",
]


class PaymentInline(VisibleRows, admin.TabularInline):
    model = Payment
    team_paths = ("invoice__account__team",)
    extra = 0
    readonly_fields = ("recorded_at",)


class OverdueFilter(admin.SimpleListFilter):
    title = "days overdue"
    parameter_name = "overdue"
    BUCKETS = {"1-30": (1, 30), "31-90": (31, 90), "91-": (91, None)}

    def lookups(self, request, model_admin):
        return [("1-30", "1–30 days"), ("31-90", "31–90 days"), ("91-", "over 90 days")]

    def queryset(self, request, queryset):
        if self.value() not in self.BUCKETS:
            return queryset
        low, high = self.BUCKETS[self.value()]
        queryset = queryset.filter(debt__gt=0, days_overdue__gte=low)
        return queryset.filter(days_overdue__lte=high) if high else queryset


class PenaltyFilter(admin.SimpleListFilter):
    title = "penalty"
    parameter_name = "penalty"

    def lookups(self, request, model_admin):
        return [("yes", "With a penalty"), ("no", "Without"), ("failed", "Could not be computed")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(penalty__gt=0)
        if self.value() == "no":
            return queryset.filter(penalty=0)
        if self.value() == "failed":
            return queryset.exclude(penalty_error="")
        return queryset


class Echo:
    def write(self, value):
        return value


@admin.register(Invoice)
class InvoiceAdmin(VisibleRows, admin.ModelAdmin):
    team_paths = ("account__team",)
    list_display = CSV_COLUMNS
    list_filter = (OverdueFilter, PenaltyFilter)
    list_select_related = ("account",)
    search_fields = ("number", "account__name")
    autocomplete_fields = ("account",)
    date_hierarchy = "voucher_date"
    ordering = ("-days_overdue", "-penalty")
    readonly_fields = (
        "due_date",
        "days_overdue",
        "penalty",
        "penalty_accrued",
        "total_due",
        "penalty_computed_at",
        "penalty_error",
    )
    exclude = ("penalty_through_day", "penalty_parts", "penalty_open")
    inlines = [PaymentInline]
    actions = ["export_csv"]

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        # Nothing is computed before the invoice is saved: an unsaved one holds the database's
        # defaults as placeholders, which cannot be shown (a refused add would answer 500).
        return fields if obj else [f for f in fields if f not in self.readonly_fields]

    @admin.action(description="Export selected as CSV")
    def export_csv(self, request, queryset):
        rows = queryset.select_related("account").order_by("-days_overdue", "pk")
        writer = csv.writer(Echo())

        def lines():
            yield writer.writerow(CSV_COLUMNS)
            for inv in rows.iterator(chunk_size=2000):
                yield writer.writerow([getattr(inv, c) for c in CSV_COLUMNS])

        response = StreamingHttpResponse(lines(), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="invoices.csv"'
        return response


@admin.register(Payment)
class PaymentAdmin(VisibleRows, admin.ModelAdmin):
    team_paths = ("invoice__account__team",)
    list_display = ("invoice", "paid_on", "amount", "recorded_at")
    list_select_related = ("invoice",)
    search_fields = ("invoice__number",)
    autocomplete_fields = ("invoice",)
    date_hierarchy = "paid_on"
    readonly_fields = ("recorded_at",)


@admin.register(PenaltyPolicy)
class PenaltyPolicyAdmin(VisibleRows, admin.ModelAdmin):
    """An account's own policy is its team's; the default policy (no account), an
    administrator's."""

    team_paths = ("account__team",)
    list_display = (
        "name",
        "account",
        "grace_days",
        "annual_rate",
        "fixed_fee",
        "fee_period_days",
        "cap_amount",
        "cap_percent",
        "payment_day_bears_interest",
    )
    search_fields = ("name", "account__name")
    autocomplete_fields = ("account",)


@admin.register(PenaltyAccrual)
class PenaltyAccrualAdmin(ReadOnlyAdmin):
    team_paths = ("invoice__account__team",)
    list_display = (
        "invoice",
        "period_start",
        "period_end",
        "days",
        "balance_days",
        "annual_rate",
        "interest",
        "fees",
        "amount",
    )
    list_select_related = ("invoice",)
    search_fields = ("invoice__number",)
    raw_id_fields = ("invoice",)
