from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from crm.admin import ReadOnlyAdmin, VisibleRows
from finance import services
from finance.currencies import money
from finance.exports import invoices_csv
from finance.invoice_list import ORDER, company_today
from finance.models import Invoice, Payment, PenaltyAccrual, PenaltyPolicy
from finance.services import record_payment
from finance.visibility import INVOICE_TEAM, PAYMENT_TEAM, finance_rows_visible_to


class FinanceRows(VisibleRows):
    """Rows by the invoice rule (finance/visibility.py): finance sees every team's."""

    def rows_for(self, user, queryset):
        return finance_rows_visible_to(user, queryset, self.team_paths or ())


class MoneyInput(forms.NumberInput):
    """An amount as entered, without the zeros the 4-decimal column pads it with (1000.125,
    not 1000.1250)."""

    def format_value(self, value):
        if isinstance(value, Decimal):
            return f"{value.normalize():f}"
        return super().format_value(value)


MONEY_INPUTS = {models.DecimalField: {"widget": MoneyInput}}


def check_payment_form(form, invoice: Invoice, debt: Decimal | None) -> Decimal | None:
    """record_payment's rules (finance/services.py) on an admin form's payment, each error on
    its field; `debt` is what the invoice owes before it (None: a new invoice's payment, which
    is its history and moves no debt). Returns the debt after it."""
    amount, paid_on = form.cleaned_data.get("amount"), form.cleaned_data.get("paid_on")
    if paid_on is not None:
        _on_field(form, "paid_on", services.check_paid_on, paid_on, company_today(timezone.now()))
    if amount is None:
        return debt
    _on_field(form, "amount", services.check_amount, amount, invoice.currency)
    if debt is None or form.has_error("amount"):
        return debt
    _on_field(form, "amount", services.check_debt, debt, amount, invoice.currency)
    return debt - amount


def _on_field(form, field: str, check, *args) -> None:
    try:
        check(*args)
    except ValidationError as error:
        form.add_error(field, error)


class PaymentFormSet(BaseInlineFormSet):
    """The payments entered below an invoice, by record_payment's rules; those entered
    together must leave a debt its column keeps."""

    def clean(self):
        super().clean()
        debt = self.instance.debt if self.instance.pk is not None else None
        for form in self.forms:
            if form.instance.pk is not None or not getattr(form, "cleaned_data", None):
                continue  # a payment recorded before (read-only), or an empty extra row
            debt = check_payment_form(form, self.instance, debt)


class PaymentInline(FinanceRows, admin.TabularInline):
    """A saved invoice's payments are added here (through record_payment, which lowers the
    debt), never changed or deleted: a mistake is undone by a refund (a negative payment),
    so that the debt moves only with the payments recorded."""

    model = Payment
    team_paths = PAYMENT_TEAM
    formset = PaymentFormSet
    formfield_overrides = MONEY_INPUTS
    extra = 0
    readonly_fields = ("recorded_at",)

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return obj is None and super().has_delete_permission(request, obj)


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


@admin.register(Invoice)
class InvoiceAdmin(FinanceRows, admin.ModelAdmin):
    team_paths = INVOICE_TEAM
    list_display = (
        "number",
        "account",
        "voucher_date",
        "due_date",
        "days_overdue",
        "amount_shown",
        "debt_shown",
        "penalty_shown",
        "total_due_shown",
    )
    list_filter = (OverdueFilter, PenaltyFilter, "voucher_date")
    list_select_related = ("account",)
    search_fields = ("number", "account__name")
    autocomplete_fields = ("account",)
    ordering = ORDER  # past due first, as the invoice list: read from its index
    readonly_fields = (
        "due_date",
        "days_overdue",
        "penalty_shown",
        "penalty_accrued_shown",
        "total_due_shown",
        "penalty_computed_at",
        "penalty_error",
    )
    exclude = ("penalty", "penalty_through_day", "penalty_parts", "penalty_open")
    formfield_overrides = MONEY_INPUTS
    inlines = [PaymentInline]
    actions = ["export_csv"]

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        # Nothing is computed before the invoice is saved: an unsaved one holds the database's
        # defaults as placeholders, which cannot be shown (a refused add would answer 500).
        return fields if obj else [f for f in fields if f not in self.readonly_fields]

    # What a change never writes from the form: the debt moves with the payments recorded
    # (record_payment, by F()), the rest is the penalty job's. A change saves only the fields
    # the form changed, so a payment or a penalty run between the page's loading and its
    # saving is not written back over.
    NOT_FROM_FORM = frozenset(
        {
            "account",
            "currency",
            "debt",
            "days_overdue",
            "penalty",
            "penalty_parts",
            "penalty_through_day",
            "penalty_open",
            "penalty_computed_at",
            "penalty_error",
        }
    )

    def get_readonly_fields(self, request, obj=None):
        # Its ledger counts in the currency's minor unit: a saved invoice keeps its currency.
        # Its debt moves with the payments recorded below it (record_payment). It keeps its
        # account: finance changes any team's invoice, though it may not pick every account.
        if obj is None:
            return self.readonly_fields
        return (*self.readonly_fields, "account", "currency", "debt")

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        fields = [name for name in form.changed_data if name not in self.NOT_FROM_FORM]
        if fields:
            obj.save(update_fields=fields)

    def save_formset(self, request, form, formset, change):
        if formset.model is not Payment or not change:
            # A new invoice's payments are its history: its debt was entered as it stands.
            return super().save_formset(request, form, formset, change)
        for payment in formset.save(commit=False):
            if payment.pk is None:
                try:
                    saved = record_payment(
                        form.instance, payment.amount, payment.paid_on, timezone.now()
                    )
                except ValidationError as error:  # the debt moved since the form was checked
                    messages.error(request, f"Payment not recorded: {' '.join(error.messages)}")
                    continue
                payment.pk, payment.recorded_at = saved.pk, saved.recorded_at

    @admin.display(description="amount", ordering="amount")
    def amount_shown(self, obj):
        return money(obj.amount, obj.currency)

    @admin.display(description="debt", ordering="debt")
    def debt_shown(self, obj):
        return money(obj.debt, obj.currency)

    @admin.display(description="penalty", ordering="penalty")
    def penalty_shown(self, obj):
        return money(obj.penalty, obj.currency)

    @admin.display(description="penalty before rounding")
    def penalty_accrued_shown(self, obj):
        return money(obj.penalty_accrued, obj.currency)

    @admin.display(description="total due", ordering="total_due")
    def total_due_shown(self, obj):
        return money(obj.total_due, obj.currency)

    @admin.action(description="Export selected as CSV")
    def export_csv(self, request, queryset):
        today = company_today(timezone.now())
        return invoices_csv(queryset.order_by("-days_overdue", "pk"), today=today)


class PaymentAdminForm(forms.ModelForm):
    def clean(self):
        cleaned = super().clean()
        invoice = cleaned.get("invoice")
        if invoice is not None:
            check_payment_form(self, invoice, invoice.debt)
        return cleaned


@admin.register(Payment)
class PaymentAdmin(FinanceRows, admin.ModelAdmin):
    """Payments are added (through record_payment, which lowers the invoice's debt), not
    changed: see PaymentInline."""

    team_paths = PAYMENT_TEAM
    list_display = ("invoice", "paid_on", "amount_shown", "recorded_at")
    list_filter = ("paid_on",)
    list_select_related = ("invoice",)
    search_fields = ("invoice__number",)
    autocomplete_fields = ("invoice",)
    readonly_fields = ("recorded_at",)
    formfield_overrides = MONEY_INPUTS
    form = PaymentAdminForm

    @admin.display(description="amount", ordering="amount")
    def amount_shown(self, obj):
        return money(obj.amount, obj.invoice.currency)

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        try:
            saved = record_payment(obj.invoice, obj.amount, obj.paid_on, timezone.now())
        except ValidationError as error:  # the debt moved since the form was checked
            messages.error(request, f"Payment not recorded: {' '.join(error.messages)}")
            return
        obj.pk, obj.recorded_at = saved.pk, saved.recorded_at

    def response_add(self, request, obj, post_url_continue=None):
        if obj.pk is None:  # refused in save_model
            return HttpResponseRedirect(reverse("admin:finance_payment_changelist"))
        return super().response_add(request, obj, post_url_continue)


@admin.register(PenaltyPolicy)
class PenaltyPolicyAdmin(FinanceRows, admin.ModelAdmin):
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

    def rows_for(self, user, queryset):
        return super().rows_for(user, queryset).filter(account__isnull=False)

    def get_readonly_fields(self, request, obj=None):
        # A policy stays its account's: finance changes any team's, though it may not pick
        # every account.
        return (*self.readonly_fields, "account") if obj else self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if obj is None and not request.user.is_administrator and "account" in form.base_fields:
            form.base_fields["account"].required = True  # the default policy: administrators'
        return form


@admin.register(PenaltyAccrual)
class PenaltyAccrualAdmin(FinanceRows, ReadOnlyAdmin):
    team_paths = PAYMENT_TEAM
    list_display = (
        "invoice",
        "period_start",
        "period_end",
        "days",
        "balance_days_shown",
        "annual_rate",
        "interest_shown",
        "fees_shown",
        "amount_shown",
    )
    list_select_related = ("invoice",)
    search_fields = ("invoice__number",)
    raw_id_fields = ("invoice",)

    @admin.display(description="balance-days")
    def balance_days_shown(self, obj):
        return money(obj.balance_days, obj.invoice.currency)

    @admin.display(description="interest")
    def interest_shown(self, obj):
        return money(obj.interest, obj.invoice.currency)

    @admin.display(description="fees")
    def fees_shown(self, obj):
        return money(obj.fees, obj.invoice.currency)

    @admin.display(description="amount")
    def amount_shown(self, obj):
        return money(obj.amount, obj.invoice.currency)
