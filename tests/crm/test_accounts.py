"""The account list ("Accounts"): the accounts of one's team (an administrator all), searched
by name, filtered by account manager (and team, for administrators), sorted and paged without
counting everything, in a constant number of queries; creating and editing an account, by
its account manager, a manager of its team or an administrator, a rep's new account theirs."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from crm import accounts, paging
from crm.models import Account
from notifications.jobs import notify_expiring
from tests.clients import HTMX, logged_in
from tests.factories import (
    AccountFactory,
    ReminderRuleFactory,
    TaskFactory,
    TeamFactory,
    UserFactory,
)


@pytest.fixture
def ravi(north):
    return UserFactory(username="ravi", first_name="Ravi", role="rep", team=north)


@pytest.fixture
def manny(north):
    return UserFactory(username="manny", first_name="Manny", role="manager", team=north)


@pytest.fixture
def south(db):
    return TeamFactory(name="South")


@pytest.fixture
def sam(south):
    return UserFactory(username="sam", first_name="Sam", role="rep", team=south)


@pytest.fixture
def sue(south):
    return UserFactory(username="sue", first_name="Sue", role="manager", team=south)


def names(response) -> list[str]:
    return [account.name for account in response.context["page"].rows]


def test_a_rep_and_a_manager_see_their_teams_accounts_an_admin_all(
    rita, manny, sam, north, south, administrator
):
    AccountFactory(name="Acme", team=north, account_manager=manny)
    AccountFactory(name="Beta", team=north, account_manager=rita)
    AccountFactory(name="Southco", team=south, account_manager=sam)

    assert names(logged_in(rita).get("/accounts/")) == ["Acme", "Beta"]
    assert names(logged_in(manny).get("/accounts/")) == ["Acme", "Beta"]
    assert names(logged_in(administrator).get("/accounts/")) == ["Acme", "Beta", "Southco"]
    assert "Southco" not in logged_in(manny).get("/accounts/?q=south").content.decode()


def test_search_finds_by_part_of_the_name_in_any_case(rita, north):
    AccountFactory(name="Acme Media", team=north)
    AccountFactory(name="Globex", team=north)
    client = logged_in(rita)

    assert names(client.get("/accounts/?q=ACME m")) == ["Acme Media"]
    assert names(client.get("/accounts/?q=lob")) == ["Globex"]
    assert names(client.get("/accounts/?q=%00")) == ["Acme Media", "Globex"]


def test_filters_by_account_manager_and_for_administrators_by_team(
    rita, manny, sam, north, south, administrator
):
    AccountFactory(name="Acme", team=north, account_manager=manny)
    AccountFactory(name="Beta", team=north, account_manager=rita)
    AccountFactory(name="Southco", team=south, account_manager=sam)

    assert names(logged_in(manny).get(f"/accounts/?manager={rita.pk}")) == ["Beta"]
    assert names(logged_in(administrator).get(f"/accounts/?team={south.pk}")) == ["Southco"]
    # A manager has no team filter, and another team's account manager is not a choice.
    refused = logged_in(manny).get(f"/accounts/?team={south.pk}&manager={sam.pk}")
    assert "team" not in refused.context["form"].fields
    assert names(refused) == ["Acme", "Beta"]
    assert "Ignored: Account manager: Select a valid choice." in refused.content.decode()


def test_a_rep_has_neither_filter(rita):
    response = logged_in(rita).get("/accounts/")

    assert set(response.context["form"].fields) == {"q", "sort", "page"}


def test_sorts_by_name_by_default_and_by_creation_on_request(rita, north):
    for name in ("Bea", "Cid", "Abe"):
        AccountFactory(name=name, team=north)
    client = logged_in(rita)

    assert names(client.get("/accounts/")) == ["Abe", "Bea", "Cid"]
    assert names(client.get("/accounts/?sort=-name")) == ["Cid", "Bea", "Abe"]
    assert names(client.get("/accounts/?sort=-created")) == ["Abe", "Cid", "Bea"]
    assert names(client.get("/accounts/?sort=created")) == ["Bea", "Cid", "Abe"]


def test_pages_without_counting_past_the_cap(rita, north, monkeypatch):
    monkeypatch.setattr(accounts, "PAGE_SIZE", 2)
    monkeypatch.setattr(paging, "SEARCH_COUNT_CAP", 3)  # a search
    for n in range(5):
        AccountFactory(name=f"Account {n}", team=north)
    client = logged_in(rita)

    first = client.get("/accounts/?q=account")
    last = client.get("/accounts/?q=account&page=3")

    assert names(first) == ["Account 0", "Account 1"] and first.context["page"].has_next
    assert "More than 3 accounts" in first.content.decode()
    assert names(last) == ["Account 4"] and not last.context["page"].has_next
    assert 'href="?q=account&amp;page=2" rel="prev"' in last.content.decode()


def test_rows_link_to_the_account_page(rita, north):
    account = AccountFactory(name="Acme", team=north)

    page = logged_in(rita).get("/accounts/").content.decode()

    assert f'<a href="/accounts/{account.pk}/">Acme</a>' in page


def test_htmx_gets_only_the_rows(rita, north):
    AccountFactory(name="Acme", team=north)

    response = logged_in(rita).get("/accounts/?q=ac", headers=HTMX)

    body = response.content.decode()
    assert body.startswith('<section class="card" id="account-list">') and "Acme" in body
    assert "<html" not in body and "HX-Request" in response["Vary"]


@pytest.mark.parametrize("rows", [1, 60])
def test_the_list_runs_a_constant_number_of_queries(
    rows, manny, rita, north, django_assert_num_queries
):
    for n in range(rows):
        AccountFactory(name=f"Acme {n}", team=north, account_manager=manny if n % 2 else rita)
    client = logged_in(manny)
    client.get("/accounts/")  # the session is warm, as on every page after the first

    # session, user, blocking gate, the manager filter's user, the search's keys (its count),
    # the page's rows by key (with their manager and team), the manager choices
    with django_assert_num_queries(7):
        response = client.get(f"/accounts/?q=acme&sort=-created&manager={rita.pk}")
    assert response.status_code == 200


@pytest.mark.parametrize("rows", [1, 60])
def test_an_administrators_list_runs_a_constant_number_of_queries(
    rows, administrator, north, django_assert_num_queries
):
    for n in range(rows):
        AccountFactory(name=f"Acme {n}", team=north)
    client = logged_in(administrator)
    client.get("/accounts/")

    # session, user, blocking gate, the team filter's team, the capped count, the page,
    # the manager choices, the team choices
    with django_assert_num_queries(8):
        response = client.get(f"/accounts/?q=acme&team={north.pk}")
    assert response.status_code == 200


@pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes: PostgreSQL")
@pytest.mark.django_db
def test_the_search_uses_the_trigram_index_of_upper_name():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'crm_account' "
            "AND indexdef LIKE '%gin_trgm_ops%'"
        )
        found = [row[0] for row in cursor.fetchall()]
    query = str(Account.objects.filter(name__icontains="x").query)

    assert len(found) == 1 and "upper" in found[0].lower()
    assert 'UPPER("crm_account"."name"::text) LIKE UPPER(' in query


# --- Creating and editing -------------------------------------------------------------------


def test_a_rep_creates_an_account_that_is_theirs_in_their_team(rita, north):
    client = logged_in(rita)
    assert 'href="/accounts/new"' in client.get("/accounts/").content.decode()
    form = client.get("/accounts/new").context["form"]
    assert set(form.fields) == {"name", "country"}

    response = client.post("/accounts/new", {"name": "Initech", "account_manager": "", "team": ""})

    account = Account.objects.get(name="Initech")
    assert response["Location"] == f"/accounts/{account.pk}/"
    assert (account.account_manager, account.team) == (rita, north)


def test_a_manager_gives_an_account_to_someone_of_the_team_only(manny, rita, sam, north, south):
    client = logged_in(manny)

    refused = client.post("/accounts/new", {"name": "X", "account_manager": sam.pk})
    client.post("/accounts/new", {"name": "Y", "account_manager": rita.pk, "team": south.pk})

    assert refused.status_code == 400 and not Account.objects.filter(name="X").exists()
    assert "Account manager: Select a valid choice." in refused.content.decode()
    made = Account.objects.get(name="Y")
    assert (made.account_manager, made.team) == (rita, north)  # no team of their choosing


def test_an_administrator_names_the_team_or_takes_the_managers(administrator, sam, south, north):
    client = logged_in(administrator)

    client.post("/accounts/new", {"name": "Theirs", "account_manager": sam.pk})
    client.post("/accounts/new", {"name": "Named", "account_manager": sam.pk, "team": north.pk})

    assert Account.objects.get(name="Theirs").team == south
    assert Account.objects.get(name="Named").team == north


def test_the_account_manager_a_team_manager_and_an_admin_edit_others_do_not(
    rita, ravi, manny, sam, sue, north, administrator
):
    account = AccountFactory(name="Acme", team=north, account_manager=rita)

    for who, name in ((rita, "By Rita"), (manny, "By Manny"), (administrator, "By Ada")):
        response = logged_in(who).post(
            f"/accounts/{account.pk}/edit", {"name": name, "account_manager": rita.pk}
        )
        assert response["Location"] == f"/accounts/{account.pk}/", who
        account.refresh_from_db()
        assert account.name == name

    assert logged_in(ravi).post(f"/accounts/{account.pk}/edit", {"name": "R"}).status_code == 403
    assert logged_in(ravi).get(f"/accounts/{account.pk}/edit").status_code == 403
    for stranger in (sam, sue):
        edit = logged_in(stranger).post(f"/accounts/{account.pk}/edit", {"name": "S"})
        assert edit.status_code == 404
    account.refresh_from_db()
    assert account.name == "By Ada"


def test_a_rep_editing_their_account_keeps_it(rita, north):
    account = AccountFactory(name="Acme", team=north, account_manager=rita)

    logged_in(rita).post(f"/accounts/{account.pk}/edit", {"name": "Acme 2"})

    account.refresh_from_db()
    assert (account.name, account.account_manager, account.team) == ("Acme 2", rita, north)


def test_a_manager_handing_an_account_over_keeps_it_in_the_team(manny, rita, north):
    account = AccountFactory(name="Acme", team=north, account_manager=manny)

    logged_in(manny).post(
        f"/accounts/{account.pk}/edit", {"name": "Acme", "account_manager": rita.pk}
    )

    account.refresh_from_db()
    assert (account.account_manager, account.team) == (rita, north)


def test_finance_may_not_create_accounts(north):
    fiona = UserFactory(username="fiona", role="finance", team=north)

    assert logged_in(fiona).post("/accounts/new", {"name": "F"}).status_code == 403
    assert 'href="/accounts/new"' not in logged_in(fiona).get("/accounts/").content.decode()
    assert not Account.objects.exists()


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "Name: This field is required."),
        ("x" * 201, "Name: Ensure this value has at most 200 characters (it has 201)."),
        ("x" * 10_000, "Name: Ensure this value has at most 200 characters (it has 10000)."),
        ("Acme\x00", "Name: Null characters are not allowed."),
    ],
)
def test_bad_names_get_one_line_and_keep_what_was_typed(rita, north, name, error):
    account = AccountFactory(name="Acme", team=north, account_manager=rita)
    client = logged_in(rita)

    for url in ("/accounts/new", f"/accounts/{account.pk}/edit"):
        response = client.post(url, {"name": name})

        page = response.content.decode()
        assert response.status_code == 400, url
        assert page.count('class="message error form-error"') == 1
        assert error in page
        if name:
            assert f'value="{name[:50]}' in page  # what was typed, NUL included
    account.refresh_from_db()
    assert account.name == "Acme" and Account.objects.count() == 1


def test_an_account_is_given_a_country_and_a_bad_code_gets_one_line(rita, north):
    account = AccountFactory(name="Acme", team=north, account_manager=rita)
    client = logged_in(rita)
    page = client.get(f"/accounts/{account.pk}/edit").content.decode()
    assert '<option value="JP">Japan (JP)</option>' in page

    saved = client.post(f"/accounts/{account.pk}/edit", {"name": "Acme", "country": "JP"})
    refused = client.post(f"/accounts/{account.pk}/edit", {"name": "Acme", "country": "XX"})

    assert saved.status_code == 302
    assert refused.status_code == 400
    error = "Country: “XX” is not an ISO 3166 country code (two capitals, e.g. DE)."
    assert refused.content.decode().count(error) == 1
    account.refresh_from_db()
    assert account.country == "JP"


def test_the_longest_name_is_saved(rita):
    logged_in(rita).post("/accounts/new", {"name": "n" * 200})

    assert Account.objects.get().name == "n" * 200


def test_creating_needs_a_csrf_token(rita):
    response = logged_in(rita, enforce_csrf_checks=True).post("/accounts/new", {"name": "N"})

    assert response.status_code == 403 and not Account.objects.exists()


def test_a_blocked_rep_reaches_neither_the_list_nor_the_forms(rita, north):
    ReminderRuleFactory(
        name="Task overdue", object_kind="task", lead_time=timedelta(0), blocking=True
    )
    TaskFactory(owner=rita, due_at=timezone.now() - timedelta(hours=1))
    notify_expiring(timezone.now())
    account = AccountFactory(name="Acme", team=north, account_manager=rita)
    client = logged_in(rita)

    for response in (
        client.get("/accounts/"),
        client.get("/accounts/new"),
        client.post("/accounts/new", {"name": "Nina"}),
        client.post(f"/accounts/{account.pk}/edit", {"name": "Changed"}),
        client.get(f"/accounts/{account.pk}/"),
    ):
        assert response["Location"] == "/notifications/?blocked=1"
    assert list(Account.objects.values_list("name", flat=True)) == ["Acme"]


def test_an_edit_keeps_a_handover_made_between_loading_and_saving(
    rita, ravi, north, south, monkeypatch
):
    """A rep's edit writes the name only: the account a manager handed to Ravi meanwhile stays
    Ravi's, in the team it was given to."""
    account = AccountFactory(name="Acme", team=north, account_manager=rita)
    loaded = accounts.account_to_change

    def loaded_then_handed_over(user, pk):
        found = loaded(user, pk)
        Account.objects.filter(pk=pk).update(account_manager=ravi, team=south)
        return found

    monkeypatch.setattr(accounts, "account_to_change", loaded_then_handed_over)
    response = logged_in(rita).post(f"/accounts/{account.pk}/edit", {"name": "Acme 2"})

    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.name, account.account_manager, account.team) == ("Acme 2", ravi, south)


def test_finance_edits_no_account_even_as_its_account_manager(north):
    fiona = UserFactory(username="fiona", role="finance", team=north)
    account = AccountFactory(name="Acme", team=north, account_manager=fiona)

    assert not accounts.sells(fiona) and not accounts.may_change_account(fiona, account)
    assert logged_in(fiona).post(f"/accounts/{account.pk}/edit", {"name": "F"}).status_code == 403
    account.refresh_from_db()
    assert account.name == "Acme"
