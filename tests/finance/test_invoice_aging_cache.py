"""The aging table is summed once a minute at most for the same invoices and filters, and at
once again after a change Vigil makes: a payment, an invoice saved, a penalty run. Another
scope or filter never shares a kept table, and without its cache server the page still sums."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from crm.runner import run_job
from finance.invoice_list import AGING_SECONDS
from finance.models import Invoice
from tests.clients import logged_in
from tests.factories import AccountFactory, UserFactory
from tests.finance.conftest import due

D = Decimal


def view(user, **params):
    page = logged_in(user).get("/invoices/", params)
    assert page.status_code == 200
    aging = page.context["aging"]
    return aging, {(r.currency, r.bucket): (r.count, r.debt) for r in aging.rows}


def aging_queries(user) -> int:
    """How many of the list's queries sum the aging table (its COUNT per bucket)."""
    with CaptureQueriesContext(connection) as run:
        logged_in(user).get("/invoices/")
    return sum('AS "count_0"' in q["sql"] for q in run.captured_queries)


def test_a_second_view_within_the_minute_shows_the_kept_sums(now, fiona, acme):
    due(acme, 10)

    assert aging_queries(fiona) == 1
    assert aging_queries(fiona) == 0


def test_the_sums_are_taken_again_after_a_minute(now, fiona, acme, time_machine):
    due(acme, 10)
    first, _ = view(fiona)

    time_machine.move_to(now + timedelta(seconds=AGING_SECONDS + 1), tick=False)
    again, _ = view(fiona)

    assert again.at > first.at


def test_a_payment_shows_in_the_sums_at_once(now, fiona, acme, django_capture_on_commit_callbacks):
    late = due(acme, 10, debt="1000.00")
    _, before = view(fiona)

    with django_capture_on_commit_callbacks(execute=True):
        response = logged_in(fiona).post(
            f"/invoices/{late.pk}/payments", {"amount": "400.00", "paid_on": "2026-03-10"}
        )
    assert response.status_code == 302
    _, after = view(fiona)

    assert before[("EUR", "1-30")] == (1, D("1000.00"))
    assert after[("EUR", "1-30")] == (1, D("600.00"))


def test_an_invoice_saved_and_a_penalty_run_show_at_once(
    now, fiona, acme, django_capture_on_commit_callbacks
):
    late = due(acme, 40, debt="1000.00")
    view(fiona)

    with django_capture_on_commit_callbacks(execute=True):
        Invoice.objects.get(pk=late.pk).save()  # the admin's save
    assert aging_queries(fiona) == 1

    with django_capture_on_commit_callbacks(execute=True):
        run_job("finance_penalties", now)
    assert aging_queries(fiona) == 1


def test_another_scope_or_filter_never_shares_the_kept_sums(now, fiona, rita, sam, acme):
    due(acme, 10, debt="100.00")
    due(AccountFactory(name="Elsewhere", team=sam.team), 10, debt="7.00")

    everyone = view(fiona)[1]
    north = view(rita)[1]
    south = view(sam)[1]
    filtered = view(fiona, account=acme.pk)[1]

    assert everyone[("EUR", "1-30")] == (2, D("107.00"))
    assert north[("EUR", "1-30")] == (1, D("100.00"))
    assert south[("EUR", "1-30")] == (1, D("7.00"))
    assert filtered[("EUR", "1-30")] == (1, D("100.00"))


@pytest.mark.parametrize("location", ["redis://127.0.0.1:1/0"])
def test_without_its_cache_server_the_page_sums_on_every_view(now, fiona, acme, location):
    due(acme, 10, debt="100.00")
    unreachable = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    with override_settings(CACHES=unreachable):
        _, sums = view(fiona)
        assert sums[("EUR", "1-30")] == (1, D("100.00"))
        assert aging_queries(fiona) == 1
    cache.clear()


def test_a_user_of_no_team_gets_an_empty_list_not_an_error(now, acme):
    loner = UserFactory(username="lone", role="rep", team=None)
    due(acme, 10)

    aging, sums = view(loner)

    assert sums == {} and aging.rows == []


def test_an_account_moved_to_another_team_moves_its_sums_at_once(
    now, rita, sam, acme, django_capture_on_commit_callbacks
):
    due(acme, 10, debt="100.00")
    assert view(rita)[1][("EUR", "1-30")] == (1, D("100.00"))
    assert view(sam)[1] == {}

    with django_capture_on_commit_callbacks(execute=True):
        acme.team = sam.team
        acme.save()

    assert view(rita)[1] == {}
    assert view(sam)[1][("EUR", "1-30")] == (1, D("100.00"))
