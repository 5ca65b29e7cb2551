"""Invoices: past due first, filters by overdue bucket, penalty, account, status and number,
an aging table per currency, constant queries, and the invoice visibility rule."""

import random
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import User
from finance.invoice_list import BUCKETS
from finance.models import Invoice
from tests.clients import HTMX, logged_in
from tests.factories import AccountFactory, LeadFactory, TaskFactory, TeamFactory
from tests.finance.conftest import TODAY, due

D = Decimal


def listed(user, **params) -> list[str]:
    page = logged_in(user).get("/invoices/", params)
    assert page.status_code == 200
    return [row.invoice.number for row in page.context["rows"]]


def aging(user, **params) -> dict[tuple[str, str], tuple[int, Decimal, Decimal]]:
    page = logged_in(user).get("/invoices/", params)
    return {
        (r.currency, r.bucket): (r.count, r.debt, r.penalty) for r in page.context["aging"].rows
    }


@pytest.mark.django_db
def test_past_due_first_most_overdue_first_then_not_yet_due_by_due_date(now, fiona, acme):
    due(acme, 5, number="LATE-5")
    due(acme, -10, number="SOON-10")
    due(acme, 50, number="PAID-50", debt="0")
    due(acme, 100, number="LATE-100")
    due(acme, 0, number="TODAY-0")
    due(acme, -3, number="SOON-3")

    order = listed(fiona)

    assert order == ["LATE-100", "LATE-5", "TODAY-0", "SOON-3", "SOON-10", "PAID-50"]


@pytest.mark.django_db
def test_each_bucket_starts_and_ends_on_its_exact_day(now, fiona, acme):
    for days in (0, 1, 30, 31, 60, 61, 90, 91, 400):
        due(acme, days, number=f"D{days}")
    due(acme, 45, number="PAID", debt="0")  # paid: past due date, but owes nothing

    found = {bucket: listed(fiona, bucket=bucket) for bucket in BUCKETS}

    assert found == {
        "1-30": ["D30", "D1"],
        "31-60": ["D60", "D31"],
        "61-90": ["D90", "D61"],
        "90+": ["D400", "D91"],
    }
    assert {b: n for (_, b), (n, _, _) in aging(fiona).items()} == dict.fromkeys(BUCKETS, 2)


@pytest.mark.django_db
def test_days_past_due_count_on_the_company_calendar_not_the_users(now, fiona, acme):
    due(acme, 30, number="D30")
    fiona.time_zone = "Pacific/Kiritimati"  # UTC+14: already the 16th there
    fiona.save()

    assert listed(fiona, bucket="1-30") == ["D30"]
    assert listed(fiona, bucket="31-60") == []


@pytest.mark.django_db
def test_filters_by_penalty_account_status_and_number(now, fiona, acme):
    other = AccountFactory(name="Globex", team=TeamFactory(name="South"))
    due(acme, 40, number="ACME-0040")
    due(acme, 10, number="ACME-0010")
    due(other, 20, number="GLOB-0020")
    due(acme, 70, number="ACME-PAID", debt="0")
    due(other, 80, number="GLOB-CREDIT", debt="-50.00")
    Invoice.objects.filter(number__in=["ACME-0040", "GLOB-0020"]).update(penalty=D("3.50"))
    Invoice.objects.filter(number="ACME-0010").update(penalty_error="2026-03-15: overflow")

    assert listed(fiona, penalty="yes") == ["ACME-0040", "GLOB-0020"]
    assert listed(fiona, penalty="failed") == ["ACME-0010"]
    assert listed(fiona, account=other.pk) == ["GLOB-0020", "GLOB-CREDIT"]
    assert listed(fiona, status="open") == ["ACME-0040", "GLOB-0020", "ACME-0010"]
    assert listed(fiona, status="paid") == ["ACME-PAID"]
    assert listed(fiona, status="credit") == ["GLOB-CREDIT"]
    assert listed(fiona, q="acme-00") == ["ACME-0040", "ACME-0010"]
    assert listed(fiona, q="acme", bucket="31-60", penalty="yes") == ["ACME-0040"]
    page = logged_in(fiona).get("/invoices/", {"account": other.pk}).content.decode()
    assert 'id="account-filter"' in page and "Globex" in page


@pytest.mark.django_db
def test_the_aging_table_totals_each_bucket_per_currency_over_the_filters_but_the_bucket(
    now, fiona, acme
):
    rng = random.Random(19)
    other = AccountFactory(name="Globex")
    places = {"EUR": 2, "JPY": 0, "KWD": 3}
    for n in range(60):
        code = rng.choice(list(places))
        unit = D(1).scaleb(-places[code])
        invoice = due(
            rng.choice([acme, other]),
            rng.randint(-20, 130),
            number=f"R{n}",
            currency=code,
            debt=str(D(rng.randint(-100, 5000)) * unit * 100),
        )
        Invoice.objects.filter(pk=invoice.pk).update(penalty=D(rng.randint(0, 900)) * unit)

    def fresh(**where) -> dict:
        totals: dict = {}
        for inv in Invoice.objects.filter(**where):
            days = (TODAY - inv.due_date).days
            for bucket, (low, high) in BUCKETS.items():
                if inv.debt > 0 and low <= days and (high is None or days <= high):
                    count, debt, penalty = totals.get((inv.currency, bucket), (0, D(0), D(0)))
                    totals[(inv.currency, bucket)] = (
                        count + 1,
                        debt + inv.debt,
                        penalty + inv.penalty,
                    )
        return totals

    def nonzero(table: dict) -> dict:
        return {key: value for key, value in table.items() if value[0]}

    assert nonzero(aging(fiona)) == fresh()
    assert nonzero(aging(fiona, account=acme.pk, bucket="1-30")) == fresh(account=acme)
    assert {currency for currency, _ in aging(fiona)} == {"EUR", "JPY", "KWD"}
    page = logged_in(fiona).get("/invoices/").content.decode()
    assert "JPY" in page and "KWD" in page


def queries(user, **params) -> int:
    client = logged_in(user)
    with CaptureQueriesContext(connection) as run:
        assert client.get("/invoices/", params).status_code == 200
    return len(run.captured_queries)


@pytest.mark.django_db
@pytest.mark.parametrize("params", [{}, {"account": "A"}, {"bucket": "1-30", "q": "INV"}])
def test_the_list_runs_the_same_queries_at_one_invoice_and_at_many(now, fiona, manny, acme, params):
    params = {k: (acme.pk if v == "A" else v) for k, v in params.items()}
    due(acme, 10)
    one = (queries(fiona, **params), queries(manny, **params))
    for n in range(120):
        due(acme, n % 120 - 10, currency=("EUR", "JPY")[n % 2], debt="5")

    assert (queries(fiona, **params), queries(manny, **params)) == one
    assert one[0] <= 7  # session, user, blocking gate, count, rows, aging (, account)


@pytest.mark.django_db
def test_pages_go_on_and_stop_at_the_cap(now, fiona, acme):
    for n in range(55):
        due(acme, n, number=f"P{n:03d}")
    client = logged_in(fiona)

    first, second = client.get("/invoices/"), client.get("/invoices/", {"page": 2})

    assert len(first.context["rows"]) == 50 and first.context["page"].has_next
    assert [r.invoice.number for r in second.context["rows"]] == [
        f"P{n:03d}" for n in range(4, -1, -1)
    ]
    assert "55 invoices" in first.content.decode()


@pytest.mark.django_db
def test_htmx_gets_the_rows_only(now, fiona, acme):
    due(acme, 3, number="H-1")

    page = logged_in(fiona).get("/invoices/", {"q": "h-1"}, headers=HTMX).content.decode()

    assert page.startswith('<div id="invoice-list">') and "H-1" in page and "<html" not in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {"q": "x" * 10_000},
        {"q": "A\x00B"},
        {"bucket": "999+"},
        {"status": "'; DROP TABLE"},
        {"account": "\x00"},
        {"account": "9" * 10_000},
        {"page": "100000"},
        {"penalty": "x" * 41},
    ],
)
def test_bad_parameters_are_named_and_ignored(now, fiona, acme, params):
    due(acme, 3, number="KEPT-1")

    page = logged_in(fiona).get("/invoices/", params)

    assert page.status_code == 200
    assert [r.invoice.number for r in page.context["rows"]] == ["KEPT-1"]
    assert "Ignored:" in page.content.decode()


@pytest.mark.django_db
def test_the_number_search_at_its_maximum_length(now, fiona, acme):
    number = "N" * 40
    due(acme, 3, number=number)

    assert listed(fiona, q=number) == [number]


@pytest.mark.django_db
@pytest.mark.parametrize(("q", "found"), [("a-12", ["A-12"]), ("A-1", []), ("12", []), ("%", [])])
def test_a_number_without_three_letters_or_digits_in_a_row_is_looked_for_whole(
    now, fiona, acme, q, found
):
    """Its trigram index reads a number from three letters or digits in a row; with fewer,
    looking inside every number would read and test each invoice (an administrator's 300 ms
    at a million): the whole number is looked for instead, as typed or in capitals."""
    due(acme, 3, number="A-12")
    due(acme, 5, number="A-123")

    assert listed(fiona, q=q) == found
    assert listed(fiona, q="a-123") == ["A-123"] and listed(fiona, q="123") == ["A-123"]


@pytest.mark.django_db
@pytest.mark.parametrize("q", ["INV-00123", "inv-00123", "v-001", "00123", "nv-0012"])
def test_a_number_is_read_from_the_index_by_its_digits_and_tested_whole(now, fiona, acme, q):
    """Every number of a series starts with its letters: the index is read for the longest
    run of digits in the words, and the numbers it finds are tested on the whole words."""
    numbers = ["INV-00123", "INV-10123", "inv-00123-b", "INV-00124", "X-00123", "INV-0012"]
    for days, number in enumerate(numbers):
        due(acme, days + 1, number=number)

    with CaptureQueriesContext(connection) as captured:
        found = listed(fiona, q=q)

    assert sorted(found) == sorted(n for n in numbers if q.upper() in n.upper())
    digits = max(filter(str.isdigit, q.replace("-", " ").split()), key=len)
    assert any(f"'%{digits}%'" in query["sql"] for query in captured.captured_queries)


@pytest.mark.django_db
def test_finance_sees_every_teams_invoices_and_sales_only_their_teams(
    now, fiona, rita, manny, sam, sue, acme
):
    south = AccountFactory(name="Southco", team=sam.team, account_manager=sue)
    nobody = AccountFactory(name="No team")
    due(acme, 10, number="NORTH-1")
    due(south, 20, number="SOUTH-1")
    due(nobody, 30, number="NONE-1")

    assert listed(fiona) == ["NONE-1", "SOUTH-1", "NORTH-1"]
    assert listed(rita) == listed(manny) == ["NORTH-1"]
    assert listed(sam) == listed(sue) == ["SOUTH-1"]
    for stranger in (sam, sue):
        page = logged_in(stranger).get("/invoices/", {"account": acme.pk})
        assert page.context["rows"] == [] and page.context["aging"].rows == []
        assert "NORTH" not in page.content.decode() and "Acme" not in page.content.decode()


@pytest.mark.django_db
def test_a_finance_user_of_no_team_sees_no_sales_records_on_the_dashboard(now, fiona, rita, acme):
    TaskFactory(owner=rita, title="Call Acme back", account=acme)
    LeadFactory(owner=rita, name="Lena Lead")

    page = logged_in(fiona).get("/")

    assert page.status_code == 200
    assert "Call Acme back" not in page.content.decode()
    assert "Lena Lead" not in page.content.decode()
    assert logged_in(fiona).get("/leads/").status_code == 200
    assert "Lena Lead" not in logged_in(fiona).get("/leads/").content.decode()


@pytest.mark.django_db
def test_the_demo_has_a_finance_user_who_sees_every_demo_invoice():
    out = StringIO()
    call_command("seed_demo", "--force", stdout=out)
    finance = User.objects.get(username="finance")

    page = logged_in(finance).get("/invoices/")

    assert finance.role == "finance" and finance.team_id is None
    assert finance.check_password("vigil-demo") and "finance" in out.getvalue()
    assert "600 invoices" in page.content.decode() and page.context["aging"].rows


@pytest.mark.django_db
def test_the_account_filter_names_only_an_account_the_user_may_see_or_has_an_invoice_of(
    now, fiona, rita, sam, acme
):
    secret = AccountFactory(name="SECRETSOUTH", team=sam.team)
    invoiced = AccountFactory(name="Southco Billed", team=sam.team)
    due(invoiced, 10, number="SB-1")

    def named(user, account) -> str:
        page = logged_in(user).get("/invoices/", {"account": account.pk})
        return page.context["account"] and page.context["account"].name

    assert named(fiona, secret) is None
    assert (
        "SECRETSOUTH"
        not in logged_in(fiona).get(f"/invoices/?account={secret.pk}").content.decode()
    )
    assert named(fiona, invoiced) == "Southco Billed"
    assert named(rita, acme) == "Acme"  # her team's account, with no invoice
    assert named(rita, invoiced) is None and named(sam, invoiced) == "Southco Billed"
