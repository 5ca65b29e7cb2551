from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from crm.views import object_page
from crm.visibility import visible_to
from finance.currencies import money
from finance.models import Invoice


@login_required
@require_GET
def invoice_detail(request, pk: int):
    invoices = visible_to(
        request.user, Invoice.objects.select_related("account"), ("account__team",)
    )
    invoice = get_object_or_404(invoices, pk=pk)
    fields = [
        ("Account", invoice.account),
        ("Voucher date", invoice.voucher_date),
        ("Payment terms", f"{invoice.payment_terms_days} days"),
        ("Due", invoice.due_date),
        ("Amount", money(invoice.amount, invoice.currency)),
        ("Outstanding", money(invoice.debt, invoice.currency)),
    ]
    return object_page(request, "invoice", invoice, fields)
