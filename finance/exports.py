"""Invoices as CSV, streamed: the invoice list's export and the admin's export action.

Amounts are plain numbers in their currency's minor unit (1000.125, 1089, 30.00), with the
currency in a column of its own, so that a spreadsheet can add them up per currency. Text
that a spreadsheet would read as a formula (an account named "=HYPERLINK(…)") is written with
a leading apostrophe, which makes it text (OWASP's advice on CSV injection). Days overdue are
counted as the invoice list counts them, from today in the company's time zone."""

import csv
from collections.abc import Iterator
from datetime import date

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from finance.currencies import plain
from finance.invoice_list import days_past_due
from finance.models import Invoice

MONEY_COLUMNS = ["amount", "debt", "penalty", "total_due"]
CSV_COLUMNS = [
    "number",
    "account",
    "voucher_date",
    "due_date",
    "days_overdue",
    "currency",
    *MONEY_COLUMNS,
]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 2000


class Echo:
    """A file that hands back what is written: csv.writer then gives each line as a string."""

    def write(self, value: str) -> str:
        return value


def as_text(value: object) -> str:
    """A text cell a spreadsheet will not run: one starting like a formula gets an apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_value(invoice: Invoice, column: str, today: date) -> str:
    if column == "days_overdue":
        return str(days_past_due(invoice, today))
    value = getattr(invoice, column)
    if column in MONEY_COLUMNS:
        return plain(value, invoice.currency)  # a number of ours: "-250.00" stays a number
    return as_text(value)


def invoice_lines(invoices: QuerySet[Invoice], today: date) -> Iterator[str]:
    writer = csv.writer(Echo())
    yield writer.writerow(CSV_COLUMNS)
    for invoice in invoices.select_related("account").iterator(chunk_size=CHUNK):
        yield writer.writerow([csv_value(invoice, column, today) for column in CSV_COLUMNS])


def invoices_csv(invoices: QuerySet[Invoice], filename: str = "invoices.csv", *, today: date):
    response = StreamingHttpResponse(invoice_lines(invoices, today), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
