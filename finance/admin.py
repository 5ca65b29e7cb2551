from django.contrib import admin

from finance.models import Invoice, Payment


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ("number", "account", "voucher_date", "payment_terms_days", "amount", "debt")
    list_select_related = ("account",)
    search_fields = ("number", "account__name")
    autocomplete_fields = ("account",)
    date_hierarchy = "voucher_date"
    inlines = [PaymentInline]


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ("invoice", "paid_on", "amount")
    list_select_related = ("invoice",)
    search_fields = ("invoice__number",)
    autocomplete_fields = ("invoice",)
    date_hierarchy = "paid_on"
