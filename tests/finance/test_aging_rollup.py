"""An invoice's team is its account's, and the aging rollup (finance_agingday) equals a fresh
sum of the owed invoices, after every way invoices and accounts are written: the database keeps
both (finance/triggers.py). The invoice list's aging table reads the rollup, by the invoice
visibility rule and the list's filters, instead of every invoice."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from crm.models import Account, Team
from crm.runner import run_job
from crm.triggers import backfill_in_batches
from finance import invoice_list, triggers
from finance.invoice_list import InvoiceFilterForm
from finance.models import AgingDay, Invoice, PenaltyPolicy
from finance.services import record_payment
from finance.visibility import invoices_visible_to
from tests.clients import logged_in
from tests.factories import AccountFactory, InvoiceFactory, TeamFactory, UserFactory
from tests.finance.conftest import NOW, TODAY, due
from tests.locks import held_by_another_transaction

pytestmark = pytest.mark.django_db
D = Decimal
CENT = D("0.0001")


def _key(row) -> tuple:
    team, currency, due_date, sign, failed = row[:5]
    return (int(team), currency, str(due_date), int(sign), bool(failed))


def _sums(row) -> tuple:
    return (int(row[5]), D(str(row[6])).quantize(CENT), D(str(row[7])).quantize(CENT))


KEY = ("team_key", "currency", "due_date", "penalty_sign", "failed")


def _groups() -> list[tuple]:
    """The rollup's rows added up per key (it only ever adds rows; compact folds them)."""
    summed = AgingDay.objects.values(*KEY).annotate(
        n=Sum("invoices"), d=Sum("debt"), p=Sum("penalty")
    )
    return [(*(g[k] for k in KEY), g["n"], g["d"], g["p"]) for g in summed]


def kept() -> dict:
    return {_key(row): _sums(row) for row in _groups() if row[5]}


def fresh() -> dict:
    with connection.cursor() as cursor:
        cursor.execute(triggers.AGING_ROLLUP.fresh(connection.vendor))
        return {_key(row): _sums(row) for row in cursor.fetchall()}


def assert_kept():
    """The rollup is the fresh sum (an emptied day sums to nothing), and every invoice is in
    its account's team."""
    emptied = [_sums(row) for row in _groups() if not row[5]]
    assert all(sums == (0, 0, 0) for sums in emptied)
    teams = Invoice.objects.values_list("team_id", "account__team_id")
    assert [team for team, _ in teams] == [account for _, account in teams]
    expected = fresh()
    assert kept() == expected
    return expected


@pytest.fixture
def south():
    return TeamFactory(name="South")


def test_every_way_of_writing_invoices_keeps_the_sums(now, acme, north, south):
    globex = AccountFactory(name="Globex", team=south)
    first = due(acme, 10)
    due(acme, 45, currency="JPY", debt="300")
    Invoice.objects.bulk_create(
        [
            Invoice(account=globex, number="B1", voucher_date=TODAY, amount=5, debt=5),
            Invoice(account=globex, number="B2", voucher_date=TODAY, amount=5, debt=-5),
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO finance_invoice (account_id, number, voucher_date, payment_terms_days,"
            " currency, amount, debt) VALUES (%s, 'RAW', %s, 7, 'EUR', 70, 70)",
            [acme.pk, TODAY - timedelta(days=100)],
        )
    assert len(assert_kept()) == 4  # acme EUR x2 days, acme JPY, globex; no credit, no paid

    record_payment(first, D("400.00"), TODAY, NOW)
    assert assert_kept()[(north.pk, "EUR", str(first.due_date), 0, False)][1] == D("600.0000")
    Invoice.objects.filter(pk=first.pk).update(penalty=D("12.34"), penalty_error="")
    Invoice.objects.filter(number="RAW").update(penalty_error="rate missing")
    Invoice.objects.filter(number="B1").update(voucher_date=TODAY - timedelta(days=90))
    Invoice.objects.filter(currency="JPY").update(currency="KWD")
    assert_kept()

    moved = Invoice.objects.get(number="RAW")
    moved.account = globex
    moved.save()
    assert_kept()
    Invoice.objects.filter(pk=moved.pk).update(team=north)  # a team written by hand
    assert_kept()
    stale = Invoice.objects.get(pk=first.pk)
    stale.team_id = None  # a stale instance saved whole writes every column
    stale.save()
    assert_kept()
    Invoice.objects.filter(pk=first.pk).update(debt=0)  # paid off
    Invoice.objects.filter(number="B1").delete()
    assert assert_kept()[(south.pk, "EUR", str(moved.due_date), 0, True)] == (1, D(70), D(0))


def test_an_account_that_changes_team_moves_its_sums(now, acme, north, south):
    due(acme, 10)
    due(acme, 40, debt="20")
    other = due(AccountFactory(team=north), 10)
    acme.team = south
    acme.save()
    sums = assert_kept()
    assert sums[(south.pk, "EUR", str(other.due_date), 0, False)] == (1, D(1000), D(0))
    Account.objects.filter(pk=acme.pk).update(team=None)
    assert assert_kept()[(0, "EUR", str(other.due_date), 0, False)] == (1, D(1000), D(0))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE crm_account SET team_id = %s WHERE id = %s", [north.pk, acme.pk])
    assert_kept()
    Team.objects.filter(pk=north.pk).delete()  # its accounts are left without a team
    assert {team for team, *_ in assert_kept()} == {0}


def test_the_penalty_run_keeps_the_sums_and_drops_emptied_days(now, acme):
    PenaltyPolicy.objects.create(name="Default", annual_rate=D("10"))
    paid = due(acme, 60)
    for days in (5, 35, 65, 95):
        due(acme, days, debt="250.00")
    Invoice.objects.filter(pk=paid.pk).update(debt=0)
    assert AgingDay.objects.count() > len(kept())  # rows added, one per change

    assert run_job("finance_penalties", NOW).status == "succeeded"

    sums = assert_kept()
    assert {sign for (_, _, _, sign, _) in sums} == {1}  # every owed invoice bears a penalty now
    assert AgingDay.objects.count() == len(sums)  # folded: one row a key, none that sums to 0


def test_the_migrations_fill_counts_what_was_there(now, acme, north):
    due(acme, 10)
    triggers.uninstall(connection)
    try:
        written = due(acme, 20)  # with no trigger: no team, not summed
        assert written.team_id is None and kept() != fresh()
        backfill_in_batches(connection, "finance_invoice", triggers.BACKFILL)
        triggers.rebuild(connection)
    finally:
        triggers.install(connection)
    assert assert_kept()[(north.pk, "EUR", str(written.due_date), 0, False)][0] == 1


FILTERS = [{}, {"penalty": "yes"}, {"penalty": "no"}, {"penalty": "failed"}, {"status": "open"}]
FILTERS += [{"status": "paid"}, {"status": "credit"}, {"bucket": "31-60"}]


@pytest.mark.parametrize("params", FILTERS)
def test_the_aging_table_is_the_sum_of_the_invoices_each_person_may_see(
    now, params, fiona, rita, manny, sam, acme
):
    globex = AccountFactory(name="Globex", team=sam.team)
    for n, days in enumerate((3, 33, 63, 93, 123, -5)):
        for account in (acme, globex, AccountFactory(team=None)):
            invoice = due(account, days, debt=str(100 + n), currency=("EUR", "JPY")[n % 2])
            Invoice.objects.filter(pk=invoice.pk).update(
                penalty=D(n % 3), penalty_error="failed" if n == 4 else ""
            )
    nobody = UserFactory(username="nobody", role="rep", team=None)
    admin = UserFactory(username="ada", role="admin", is_superuser=True)
    for user in (fiona, rita, manny, sam, nobody, admin):
        form = InvoiceFilterForm(params)
        assert form.is_valid()
        listed = invoice_list.invoices_for_list(user, form, TODAY)
        rolled = invoice_list.aging_table(user, form, listed, TODAY)
        summed = invoice_list._aging_rows(invoice_list._aging_query(listed, TODAY))
        assert not rolled.summed
        assert rolled.rows == summed, user
    assert invoices_visible_to(rita).count() == 6  # her team's (acme's) only


@pytest.mark.parametrize("cap", [1000, 3])  # within the count's cap: summed by key
@pytest.mark.parametrize("params", [{"q": "inv-"}, {"q": "inv-", "bucket": "31-60"}])
def test_a_number_search_sums_the_invoices_it_lists(now, cap, params, fiona, rita, sam, acme):
    globex = AccountFactory(name="Globex", team=sam.team)
    for n, days in enumerate((3, 33, 45, 93, -5)):
        for account in (acme, globex):
            due(account, days, number=f"INV-{account.pk}-{n}", debt=str(100 + n))
    due(acme, 40, number="CN-1", debt="7")  # not found by the search
    for user in (fiona, rita, sam):
        form = InvoiceFilterForm(params)
        assert form.is_valid()
        listed = invoice_list.invoices_for_list(user, form, TODAY)
        expected = invoice_list._aging_rows(invoice_list._aging_query(listed, TODAY))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(invoice_list, "COUNT_CAP", cap)
            aging = logged_in(user).get("/invoices/", params).context["aging"]
        assert aging.summed and aging.rows == expected, user
        assert sum(row.count for row in aging.rows) == (8 if user == fiona else 4)


def test_the_list_reads_the_rollup_not_every_invoice(now, fiona, acme):
    for days in range(1, 40):
        due(acme, days, debt="10")
    with CaptureQueriesContext(connection) as page:
        response = logged_in(fiona).get("/invoices/")
    aging = [q["sql"] for q in page.captured_queries if 'AS "count_0"' in q["sql"]]
    assert len(aging) == 1 and "finance_agingday" in aging[0]
    assert "finance_invoice" not in aging[0]
    assert sum(row.count for row in response.context["aging"].rows) == 39
    # A number search, or one account, sums the few invoices it lists.
    searched = logged_in(fiona).get("/invoices/", {"q": "INV", "account": acme.pk})
    assert searched.context["aging"].summed
    assert "of the invoices listed" in searched.content.decode()


def test_a_payment_shows_in_the_aging_table_at_once(now, fiona, acme):
    invoice = due(acme, 10)
    client = logged_in(fiona)
    before = {r.bucket: r.debt for r in client.get("/invoices/").context["aging"].rows}
    record_payment(invoice, D("250.00"), TODAY, NOW)
    after = {r.bucket: r.debt for r in client.get("/invoices/").context["aging"].rows}
    assert (before["1-30"], after["1-30"]) == (D("1000.00"), D("750.00"))


def test_an_invoice_factory_invoice_is_counted(now, acme):
    InvoiceFactory(account=acme, voucher_date=TODAY - timedelta(days=60))
    assert sum(n for n, _, _ in assert_kept().values()) == 1


def test_an_invoice_written_before_its_account_takes_its_team_and_is_summed_there(now, north):
    with connection.cursor() as cursor:  # foreign keys are checked at commit: this order is legal
        cursor.execute("SELECT coalesce(max(id), 0) + 1000 FROM crm_account")
        (account_id,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO finance_invoice (account_id, number, voucher_date, payment_terms_days,"
            " currency, amount, debt) VALUES (%s, 'EARLY', %s, 30, 'EUR', 10, 10)",
            [account_id, TODAY - timedelta(days=60)],
        )
        cursor.execute(
            "INSERT INTO crm_account (id, name, team_id, created_at) VALUES (%s, 'Late', %s, %s)",
            [account_id, north.pk, "2026-01-01T00:00:00+00:00"],
        )
    assert {team for team, *_ in assert_kept()} == {north.pk}


def test_a_day_whose_invoices_were_all_paid_leaves_the_aging_table(now, fiona, acme):
    invoice = due(acme, 10)
    record_payment(invoice, invoice.debt, TODAY, NOW)
    assert AgingDay.objects.exists() and not kept()  # its rows sum to nothing until folded
    assert logged_in(fiona).get("/invoices/").context["aging"].rows == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE: PostgreSQL")
def test_truncating_the_invoices_empties_the_rollup(now, acme):
    due(acme, 10)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE finance_invoice CASCADE")
    assert not AgingDay.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL")
def test_an_invoice_written_while_its_account_changes_team_waits_for_the_change(north, south):
    account, other = AccountFactory(team=north), AccountFactory(team=north)
    moving = "UPDATE crm_account SET team_id = %s WHERE id = %s"
    with held_by_another_transaction(moving, [south.pk, account.pk]):
        InvoiceFactory(account=other)  # another account: no wait
        with pytest.raises(OperationalError, match="lock timeout"), transaction.atomic():
            InvoiceFactory(account=account)
    InvoiceFactory(account=account, voucher_date=TODAY - timedelta(days=90))
    assert south.pk in {team for team, *_ in assert_kept()}


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL")
def test_two_payments_on_the_same_day_and_team_do_not_wait_for_each_other(acme):
    """The rollup only ever gains rows: a payment while another transaction (the penalty run,
    another payment, a team change) has changed invoices of the same key does not wait."""
    first, second = due(acme, 10), due(acme, 10)
    paying = "UPDATE finance_invoice SET debt = debt - 1 WHERE id = %s"
    with held_by_another_transaction(paying, [first.pk]):
        record_payment(second, D("1.00"), TODAY, NOW)  # would time out if it waited
    assert assert_kept()[(acme.team_id, "EUR", str(first.due_date), 0, False)][1] == D("1998")


def test_a_dump_leaves_the_rollup_out(now, acme, tmp_path):
    due(acme, 10)
    dump = tmp_path / "finance.json"
    call_command("dumpdata", "finance", output=str(dump))
    assert "finance.agingday" not in dump.read_text()
