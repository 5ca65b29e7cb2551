"""Finance users watch past-due invoices in the admin: filter, sort, export."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from finance.models import Invoice
from tests.factories import InvoiceFactory


@pytest.fixture
def book(db):
    rows = [("A-10", 10, "1.00"), ("B-45", 45, "9.50"), ("C-120", 120, "30.00"), ("D-0", 0, "0")]
    for number, days, penalty in rows:
        # Due as many days before the others as it is more overdue, as the penalty run finds.
        InvoiceFactory(number=number, voucher_date=date(2026, 1, 1) - timedelta(days=days))
        Invoice.objects.filter(number=number).update(days_overdue=days, penalty=Decimal(penalty))


def admin_client(administrator):
    client = Client()
    client.force_login(administrator)
    return client


@pytest.mark.django_db
def test_filter_by_days_overdue_and_penalty(book, administrator):
    client = admin_client(administrator)

    middle = client.get("/admin/finance/invoice/", {"overdue": "31-90"})
    with_penalty = client.get("/admin/finance/invoice/", {"penalty": "yes"})

    assert [i.number for i in middle.context["cl"].result_list] == ["B-45"]
    assert {i.number for i in with_penalty.context["cl"].result_list} == {"A-10", "B-45", "C-120"}


@pytest.mark.django_db
def test_past_due_invoices_sort_worst_first_and_by_penalty(book, administrator):
    client = admin_client(administrator)

    default = client.get("/admin/finance/invoice/")
    by_penalty = client.get("/admin/finance/invoice/", {"o": "8"})  # the penalty column

    assert [i.number for i in default.context["cl"].result_list][:3] == ["C-120", "B-45", "A-10"]
    assert [i.number for i in by_penalty.context["cl"].result_list][0] == "D-0"


@pytest.mark.django_db
def test_export_the_selection_as_csv(book, administrator):
    client = admin_client(administrator)
    ids = list(Invoice.objects.filter(days_overdue__gt=0).values_list("pk", flat=True))

    response = client.post(
        "/admin/finance/invoice/", {"action": "export_csv", "_selected_action": ids}
    )

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response["Content-Type"] == "text/csv"
    assert rows[0][:2] == ["number", "account"] and "penalty" in rows[0]
    assert [r[0] for r in rows[1:]] == ["C-120", "B-45", "A-10"]
    assert rows[1][rows[0].index("penalty")] == "30.00"
