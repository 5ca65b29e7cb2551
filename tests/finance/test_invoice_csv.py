"""The invoice list as CSV: the filtered list, streamed, with a currency column, and no cell
a spreadsheet would run as a formula."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext

from finance.models import Invoice
from tests.clients import logged_in
from tests.factories import AccountFactory
from tests.finance.conftest import TODAY, due

D = Decimal


def rows_of(response) -> list[dict]:
    assert response.status_code == 200 and response.streaming
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def exported(user, **params) -> list[dict]:
    return rows_of(logged_in(user).get("/invoices/export.csv", params))


@pytest.mark.django_db
def test_the_export_is_the_filtered_list_in_its_order_with_its_currency(now, fiona, acme):
    other = AccountFactory(name="Globex")
    due(acme, 45, number="A-45", currency="JPY", debt="1000", amount=D(1000))
    due(acme, 10, number="A-10", currency="KWD", debt="12.125")
    due(other, 40, number="G-40")
    due(acme, 35, number="A-PAID", debt="0")

    everything = exported(fiona)
    filtered = exported(fiona, bucket="31-60", account=acme.pk)

    assert [r["number"] for r in everything] == ["A-45", "G-40", "A-10", "A-PAID"]
    assert [r["number"] for r in filtered] == ["A-45"]
    assert {k: filtered[0][k] for k in ("account", "currency", "amount", "debt", "due_date")} == {
        "account": "Acme",
        "currency": "JPY",
        "amount": "1000",
        "debt": "1000",
        "due_date": str(TODAY - timedelta(days=45)),
    }
    assert everything[2]["debt"] == "12.125" and everything[2]["currency"] == "KWD"
    assert [r["number"] for r in exported(fiona, status="paid")] == ["A-PAID"]


@pytest.mark.django_db
def test_the_list_links_to_the_export_of_what_it_shows(now, fiona, acme):
    due(acme, 45, number="A-45")

    page = logged_in(fiona).get("/invoices/", {"bucket": "31-60", "page": 1}).content.decode()

    assert 'href="/invoices/export.csv?bucket=31-60"' in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name",
    ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\r=1"],
)
def test_a_cell_that_starts_like_a_formula_is_written_as_text(now, fiona, name):
    due(AccountFactory(name=name), 5, number=name[:40])

    (row,) = exported(fiona)

    assert row["account"] == "'" + name and row["number"] == "'" + name[:40]


@pytest.mark.django_db
def test_amounts_stay_numbers_even_negative(now, fiona, acme):
    due(acme, 5, number="CREDIT-1", debt="-250.00", amount=D("-250.00"))

    (row,) = exported(fiona)

    assert (row["amount"], row["debt"], row["number"]) == ("-250.00", "-250.00", "CREDIT-1")


@pytest.mark.django_db
def test_the_admin_export_guards_its_cells_too(now, administrator):
    invoice = due(AccountFactory(name="=cmd|' /C calc'!A0"), 5, number="ADM-1")

    response = logged_in(administrator).post(
        "/admin/finance/invoice/", {"action": "export_csv", "_selected_action": [invoice.pk]}
    )

    assert rows_of(response)[0]["account"] == "'=cmd|' /C calc'!A0"


@pytest.mark.django_db
def test_the_export_streams_reading_the_invoices_only_as_it_is_sent(now, fiona, acme, monkeypatch):
    chunks = []
    iterator = QuerySet.iterator

    def spy(self, chunk_size=None):
        chunks.append((self.model, chunk_size))
        return iterator(self, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", spy)
    Invoice.objects.bulk_create(
        Invoice(
            account=acme,
            number=f"BULK-{n:05d}",
            voucher_date=TODAY - timedelta(days=n % 200),
            amount=D(100),
            debt=D(100),
        )
        for n in range(4500)
    )
    client = logged_in(fiona)

    with CaptureQueriesContext(connection) as before_sending:
        response = client.get("/invoices/export.csv")
    with CaptureQueriesContext(connection) as sending:
        rows = rows_of(response)

    def reads_invoices(queries) -> bool:
        return any('"finance_invoice"."number"' in q["sql"] for q in queries)

    assert not reads_invoices(before_sending.captured_queries)
    assert len(rows) == 4500 and len({r["number"] for r in rows}) == 4500
    assert reads_invoices(sending.captured_queries)
    assert chunks == [(Invoice, 2000)]  # in chunks, not the whole list held at once
    assert response["Content-Disposition"] == f'attachment; filename="invoices-{TODAY}.csv"'


@pytest.mark.django_db
def test_another_teams_people_export_nothing_of_it(now, sam, sue, rita, acme):
    due(acme, 5, number="NORTH-1")

    assert exported(sam) == exported(sue) == []
    assert exported(sam, account=acme.pk) == []
    assert [r["number"] for r in exported(rita)] == ["NORTH-1"]


@pytest.mark.django_db
def test_bad_parameters_export_what_the_list_shows(now, fiona, acme):
    due(acme, 5, number="KEPT-1")

    assert [r["number"] for r in exported(fiona, q="A\x00", bucket="x" * 10_000)] == ["KEPT-1"]


@pytest.mark.django_db
def test_days_overdue_are_counted_from_company_today_as_the_list_counts_them(
    now, fiona, acme, administrator
):
    """Not the nightly run's figure, which is a day old or more (or never computed)."""
    due(acme, 45, number="A-45")
    due(acme, 20, number="A-PAID", debt="0")
    due(acme, -5, number="A-NEXT")
    Invoice.objects.update(days_overdue=3)  # as a run days ago left them

    from_list = {r["number"]: r["days_overdue"] for r in exported(fiona)}
    action = logged_in(administrator).post(
        "/admin/finance/invoice/",
        {
            "action": "export_csv",
            "_selected_action": list(Invoice.objects.values_list("pk", flat=True)),
        },
    )
    from_admin = {r["number"]: r["days_overdue"] for r in rows_of(action)}

    assert from_list == from_admin == {"A-45": "45", "A-PAID": "0", "A-NEXT": "0"}
    listed = logged_in(fiona).get("/invoices/").context["rows"]
    assert {row.invoice.number: str(row.days_past_due) for row in listed} == from_list
