"""The contact list ("Contacts" in the navigation): the contacts one may see (a rep and a manager
their team's accounts', an administrator all), filtered by status, account and account manager,
searched by name and email, sorted and paged without counting everything, in a constant number
of queries; creating a contact (for an account given or chosen) and editing one, by those who
may work on the account's contacts."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from crm import contacts, paging
from crm.models import Contact
from notifications.jobs import notify_expiring
from tests.clients import HTMX, logged_in
from tests.factories import (
    AccountFactory,
    ContactFactory,
    ReminderRuleFactory,
    TaskFactory,
    TeamFactory,
    UserFactory,
)


@pytest.fixture
def manny(north):
    return UserFactory(username="manny", first_name="Manny", role="manager", team=north)


@pytest.fixture
def south(db):
    return TeamFactory(name="South")


@pytest.fixture
def sam(south):
    return UserFactory(username="sam", role="rep", team=south)


@pytest.fixture
def acme(north, manny):
    return AccountFactory(name="Acme", team=north, account_manager=manny)


@pytest.fixture
def globex(north, rita):
    return AccountFactory(name="Globex", team=north, account_manager=rita)


@pytest.fixture
def southco(south, sam):
    return AccountFactory(name="Southco", team=south, account_manager=sam)


def names(response) -> list[str]:
    return [contact.name for contact in response.context["page"].rows]


def test_a_rep_and_a_manager_see_their_teams_contacts_an_admin_all(
    rita, manny, sam, administrator, acme, globex, southco
):
    ContactFactory(name="Ana", account=acme)
    ContactFactory(name="Bo", account=globex)
    ContactFactory(name="Sid", account=southco)

    assert names(logged_in(rita).get("/contacts/")) == ["Ana", "Bo"]
    assert names(logged_in(manny).get("/contacts/")) == ["Ana", "Bo"]
    assert names(logged_in(sam).get("/contacts/")) == ["Sid"]
    assert names(logged_in(administrator).get("/contacts/")) == ["Ana", "Bo", "Sid"]
    searched = logged_in(manny).get("/contacts/?q=Sid")
    assert names(searched) == [] and "Southco" not in searched.content.decode()


def test_filters_by_status_account_and_account_manager(rita, manny, acme, globex):
    ContactFactory(name="Ana", account=acme)
    ContactFactory(name="Bo", account=globex, status=Contact.Status.REJECTED)
    client = logged_in(manny)

    assert names(client.get("/contacts/?status=rejected")) == ["Bo"]
    only_acme = client.get(f"/contacts/?account={acme.pk}")
    assert names(only_acme) == ["Ana"]
    assert 'id="account-filter">Account: Acme' in only_acme.content.decode()
    assert f'href="/contacts/new?account={acme.pk}"' in only_acme.content.decode()
    assert names(client.get(f"/contacts/?owner={rita.pk}")) == ["Bo"]
    assert names(client.get(f"/contacts/?owner={manny.pk}&status=rejected")) == []


def test_another_teams_account_is_no_filter_and_a_rep_has_no_owner_filter(rita, acme, southco, sam):
    ContactFactory(name="Ana", account=acme)
    ContactFactory(name="Sid", account=southco)
    client = logged_in(rita)

    foreign = client.get(f"/contacts/?account={southco.pk}")
    mine = client.get(f"/contacts/?owner={sam.pk}")

    assert names(foreign) == ["Ana"] and "Southco" not in foreign.content.decode()
    assert "Ignored: Account: Select a valid choice." in foreign.content.decode()
    assert "owner" not in mine.context["form"].fields and names(mine) == ["Ana"]


def test_search_finds_by_name_or_email_in_any_case(rita, acme):
    ContactFactory(name="Ana Lopez", email="ana@acme.example", account=acme)
    ContactFactory(name="Bo Berg", email="bo@globex.example", account=acme)
    client = logged_in(rita)

    assert names(client.get("/contacts/?q=lopez")) == ["Ana Lopez"]
    assert names(client.get("/contacts/?q=GLOBEX.ex")) == ["Bo Berg"]
    assert names(client.get("/contacts/?q=%25ana")) == []  # a LIKE wildcard is a character
    assert names(client.get("/contacts/?q=lop_z")) == []
    # One or two letters are looked for at the start of a name or address, as in the box
    # (inside, every contact would be read and tested).
    assert names(client.get("/contacts/?q=LO")) == [] and names(client.get("/contacts/?q=bo")) == [
        "Bo Berg"
    ]


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("x" * 200, []),  # the longest search: fine, nothing matches
        ("x" * 10_000, ["Ana"]),  # too long: ignored, with a line saying so
        ("an\x00a", ["Ana"]),  # a NUL: ignored, never a server error
        ("<script>alert(1)</script>", []),
    ],
)
def test_hostile_searches_are_answered_not_crashed_on(rita, acme, q, found):
    ContactFactory(name="Ana", account=acme)

    response = logged_in(rita).get("/contacts/", {"q": q})

    assert response.status_code == 200 and names(response) == found
    assert "<script>alert" not in response.content.decode()


def test_sorts_by_name_by_default_and_by_status_on_request(rita, acme):
    ContactFactory(name="Bea", account=acme, status=Contact.Status.ACTIVE)
    ContactFactory(name="Cid", account=acme, status=Contact.Status.BOUNCED)
    ContactFactory(name="Abe", account=acme, status=Contact.Status.REJECTED)
    client = logged_in(rita)

    assert names(client.get("/contacts/")) == ["Abe", "Bea", "Cid"]
    assert names(client.get("/contacts/?sort=-name")) == ["Cid", "Bea", "Abe"]
    assert names(client.get("/contacts/?sort=status")) == ["Bea", "Cid", "Abe"]


def test_pages_without_counting_past_the_cap(rita, acme, monkeypatch):
    monkeypatch.setattr(paging, "COUNT_CAP", 3)
    monkeypatch.setattr(contacts, "PAGE_SIZE", 2)
    for n in range(5):
        ContactFactory(name=f"Contact {n}", account=acme)
    client = logged_in(rita)

    first = client.get("/contacts/?status=")
    last = client.get("/contacts/?status=&page=3")

    assert names(first) == ["Contact 0", "Contact 1"] and first.context["page"].has_next
    assert "More than 3 contacts" in first.content.decode()
    assert names(last) == ["Contact 4"] and not last.context["page"].has_next
    assert 'href="?status=&amp;page=2" rel="prev"' in last.content.decode()


def test_a_search_is_counted_less_far_than_the_list(rita, acme, monkeypatch):
    monkeypatch.setattr(paging, "COUNT_CAP", 4)
    monkeypatch.setattr(paging, "SEARCH_COUNT_CAP", 2)
    for n in range(4):
        ContactFactory(name=f"Kowalski {n}", account=acme)
    client = logged_in(rita)

    assert "4 contacts" in client.get("/contacts/").content.decode()
    searched = client.get("/contacts/?q=kowalski")
    assert "More than 2 contacts" in searched.content.decode()
    assert len(names(searched)) == 4  # the page lists them all the same


def test_htmx_gets_only_the_rows(rita, acme):
    ContactFactory(name="Ana", account=acme)

    response = logged_in(rita).get("/contacts/?q=an", headers=HTMX)

    body = response.content.decode()
    assert body.startswith('<section class="card" id="contact-list">') and "Ana" in body
    assert "<html" not in body and "HX-Request" in response["Vary"]


@pytest.mark.parametrize("rows", [1, 60])
def test_the_list_runs_a_constant_number_of_queries(
    rows, manny, rita, acme, globex, django_assert_num_queries
):
    for n in range(rows):
        ContactFactory(name=f"Contact {n}", account=acme if n % 2 else globex)
    client = logged_in(manny)
    client.get("/contacts/")  # the session is warm, as on every page after the first

    # session, user, blocking gate, the account filter's account, the owner filter's user,
    # the capped count, the page of rows, the owner choices
    with django_assert_num_queries(8):
        response = client.get(
            f"/contacts/?status=active&q=contact&sort=name&owner={rita.pk}&account={globex.pk}"
        )
    assert response.status_code == 200 and len(names(response)) == min((rows + 1) // 2, 50)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes: PostgreSQL")
@pytest.mark.django_db
def test_search_columns_have_trigram_indexes():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'crm_contact' "
            "AND indexdef LIKE '%gin_trgm_ops%'"
        )
        found = {row[0] for row in cursor.fetchall()}

    assert found == {
        "crm_contact_name_trgm",
        "crm_contact_email_trgm",
        "contact_team_search",
        "contact_tail_search",
    }


# --- Creating and editing -----------------------------------------------------------------------


def test_a_rep_creates_a_contact_for_an_account_preselected_from_its_page(rita, acme, globex):
    client = logged_in(rita)
    form_page = client.get(f"/contacts/new?account={acme.pk}").content.decode()
    assert f'<option value="{acme.pk}" selected>Acme</option>' in form_page

    response = client.post(
        "/contacts/new",
        {"name": "Nina", "email": "nina@acme.example", "phone": "+34 600", "account": acme.pk},
    )

    contact = Contact.objects.get(name="Nina")
    assert response["Location"] == f"/contacts/{contact.pk}/"
    assert (contact.account, contact.email, contact.status) == (acme, "nina@acme.example", "active")


def test_the_account_choice_holds_only_accounts_one_may_work_on(rita, acme, southco):
    client = logged_in(rita)

    page = client.get("/contacts/new").content.decode()
    refused = client.post("/contacts/new", {"name": "X", "account": southco.pk})
    preselected = client.get(f"/contacts/new?account={southco.pk}").content.decode()

    assert "Acme" in page and "Southco" not in page and "Southco" not in preselected
    assert refused.status_code == 400 and not Contact.objects.filter(name="X").exists()
    assert "Account: Select a valid choice." in refused.content.decode()


def test_an_account_manager_may_work_on_their_account_outside_their_team(rita, south, north):
    """The rule, in Python and in SQL, agrees for every kind of user."""
    own_elsewhere = AccountFactory(name="Abroad", team=south, account_manager=rita)
    teams = AccountFactory(name="Team's", team=north)
    foreign = AccountFactory(name="Foreign", team=south)
    finance = UserFactory(username="fin", role="finance", team=north)
    manager = UserFactory(username="mgr", role="manager", team=north)
    admin = UserFactory(username="adm", role="admin")
    for user in (rita, finance, manager, admin):
        in_sql = set(contacts.accounts_to_work_on(user))
        for account in (own_elsewhere, teams, foreign):
            visible = user.is_administrator or account.team_id == user.team_id
            assert (account in in_sql) == (visible and contacts.may_work_on(user, account))
    assert not contacts.may_work_on(finance, teams) and contacts.may_work_on(rita, teams)
    assert contacts.may_work_on(rita, own_elsewhere) and not contacts.may_work_on(manager, foreign)


def test_bad_input_shows_one_line_per_error_and_keeps_what_was_typed(rita, acme):
    response = logged_in(rita).post(
        "/contacts/new",
        {"name": "", "email": "not-an-email", "phone": "Kept phone", "account": acme.pk},
    )

    page = response.content.decode()
    assert response.status_code == 400 and not Contact.objects.exists()
    assert page.count('class="message error form-error"') == 2
    assert "Name: This field is required." in page
    assert "Email: Enter a valid email address." in page
    assert 'value="Kept phone"' in page and 'value="not-an-email"' in page


def test_fields_at_their_maximum_length_are_saved(rita, acme):
    local = "a" * 64
    email = f"{local}@{'b' * 63}.{'c' * 63}.{'d' * 57}.example"[:254]
    fields = {"name": "N" * 200, "email": email, "phone": "9" * 40, "account": acme.pk}

    response = logged_in(rita).post("/contacts/new", fields)

    assert response.status_code == 302, response.content.decode()[:2000]
    contact = Contact.objects.get()
    assert (contact.name, contact.email, contact.phone) == ("N" * 200, email, "9" * 40)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "N" * 10_000, "Name: Ensure this value has at most 200 characters"),
        ("name", "Ana\x00", "Name: Null characters are not allowed."),
        ("phone", "9" * 41, "Phone: Ensure this value has at most 40 characters"),
        (
            "email",
            "a\x00@b.example",
            "Email: Enter a valid email address. Null characters are not allowed.",
        ),
        ("account", "1' OR '1'='1", "Account: Select a valid choice."),
    ],
)
def test_hostile_input_is_refused_with_one_line(rita, acme, field, value, message):
    fields = {"name": "Ana", "email": "ana@acme.example", "account": acme.pk, field: value}

    response = logged_in(rita).post("/contacts/new", fields)

    assert response.status_code == 400 and not Contact.objects.exists()
    assert message in response.content.decode()


def test_a_rep_edits_a_contact_of_their_teams_account(rita, acme, globex):
    contact = ContactFactory(name="Ana", email="ana@acme.example", account=acme)
    client = logged_in(rita)
    assert 'value="Ana"' in client.get(f"/contacts/{contact.pk}/edit").content.decode()

    response = client.post(
        f"/contacts/{contact.pk}/edit",
        {"name": "Ana López", "email": "ana@globex.example", "phone": "1", "account": globex.pk},
    )

    contact.refresh_from_db()
    assert response["Location"] == f"/contacts/{contact.pk}/"
    assert (contact.name, contact.email, contact.account) == (
        "Ana López",
        "ana@globex.example",
        globex,
    )


def test_a_wrong_edit_keeps_the_stored_contact_and_what_was_typed(rita, acme):
    contact = ContactFactory(name="Ana", account=acme)

    response = logged_in(rita).post(
        f"/contacts/{contact.pk}/edit", {"name": "", "email": "typed@x", "account": acme.pk}
    )

    page = response.content.decode()
    assert response.status_code == 400 and "<h1>Edit Ana</h1>" in page
    assert 'value="typed@x"' in page and Contact.objects.get().name == "Ana"


def test_who_may_not_edit_gets_403_or_404(rita, acme, sam, north):
    contact = ContactFactory(name="Ana", account=acme)
    finance = UserFactory(username="fin", role="finance", team=north)
    fields = {"name": "Changed", "account": acme.pk}

    assert logged_in(sam).post(f"/contacts/{contact.pk}/edit", fields).status_code == 404
    assert logged_in(finance).get(f"/contacts/{contact.pk}/edit").status_code == 403
    assert logged_in(finance).post(f"/contacts/{contact.pk}/edit", fields).status_code == 403
    assert logged_in(finance).post("/contacts/new", fields).status_code == 403
    assert Contact.objects.get().name == "Ana" and Contact.objects.count() == 1


def test_creating_needs_a_csrf_token(rita, acme):
    client = logged_in(rita, enforce_csrf_checks=True)

    response = client.post("/contacts/new", {"name": "Nina", "account": acme.pk})

    assert response.status_code == 403 and not Contact.objects.exists()


@pytest.mark.parametrize("rows", [1, 300])
def test_the_forms_run_a_constant_number_of_queries(rows, rita, north, django_assert_num_queries):
    accounts = AccountFactory.create_batch(rows, team=north)
    contact = ContactFactory(account=accounts[0])
    client = logged_in(rita)
    client.get("/contacts/new")

    # session, user, gate, the listed accounts (bounded), the preselected one
    with django_assert_num_queries(5):
        assert client.get(f"/contacts/new?account={accounts[-1].pk}").status_code == 200
    # session, user, gate, the contact, the listed accounts (bounded), the current one
    with django_assert_num_queries(6):
        assert client.get(f"/contacts/{contact.pk}/edit").status_code == 200


@pytest.mark.parametrize("pk", ["99999999999999999999999", "-1", "1e3", "\x00", "x" * 10_000])
def test_hostile_account_and_owner_parameters_are_ignored(manny, acme, pk):
    ContactFactory(name="Ana", account=acme)
    client = logged_in(manny)

    listed = client.get("/contacts/", {"account": pk, "owner": pk, "page": pk, "sort": pk})
    form = client.get("/contacts/new", {"account": pk})
    posted = client.post("/contacts/new", {"name": "X", "account": pk})

    assert listed.status_code == 200 and names(listed) == ["Ana"]
    assert form.status_code == 200 and posted.status_code == 400
    assert Contact.objects.count() == 1


def test_a_blocked_rep_reaches_neither_the_list_nor_a_contact(rita, acme):
    ReminderRuleFactory(
        name="Task overdue", object_kind="task", lead_time=timedelta(0), blocking=True
    )
    TaskFactory(owner=rita, due_at=timezone.now() - timedelta(hours=1))
    notify_expiring(timezone.now())
    contact = ContactFactory(account=acme)
    client = logged_in(rita)

    for response in (
        client.get("/contacts/"),
        client.post("/contacts/new", {"name": "Nina", "account": acme.pk}),
        client.get(f"/contacts/{contact.pk}/"),
        client.post(f"/contacts/{contact.pk}/status", {"to": "rejected", "reason": "x"}),
    ):
        assert response["Location"] == "/notifications/?blocked=1"
    assert Contact.objects.get().status == Contact.Status.ACTIVE


def test_an_edit_keeps_a_status_changed_between_loading_and_saving(rita, acme, monkeypatch):
    """The edit saves its own fields only: a rejection committed while the edit was under way
    stays, and the suppression run (which reads the status) lists the address."""
    contact = ContactFactory(name="Carla", email="carla@acme.example", account=acme)
    loaded = contacts.contact_to_change

    def loaded_then_rejected(user, pk):
        found = loaded(user, pk)
        stored = Contact.objects.get(pk=pk)
        contacts.change_status(stored, "rejected", "asked us to stop", rita, timezone.now())
        return found

    monkeypatch.setattr(contacts, "contact_to_change", loaded_then_rejected)
    fields = {"name": "Carla B", "email": "carla@acme.example", "phone": "", "account": acme.pk}
    response = logged_in(rita).post(f"/contacts/{contact.pk}/edit", fields)

    assert response.status_code == 302
    contact.refresh_from_db()
    assert (contact.name, contact.status) == ("Carla B", "rejected")
    assert contact.status_reason == "asked us to stop" and contact.status_changed_at


def test_an_edit_of_a_contact_deleted_meanwhile_is_a_404_and_writes_nothing(
    rita, acme, monkeypatch
):
    contact = ContactFactory(name="Carla", email="carla@acme.example", account=acme)
    loaded = contacts.contact_to_change

    def loaded_then_deleted(user, pk):
        found = loaded(user, pk)
        Contact.objects.filter(pk=pk).delete()
        return found

    monkeypatch.setattr(contacts, "contact_to_change", loaded_then_deleted)
    fields = {"name": "Carla B", "email": "carla@acme.example", "phone": "", "account": acme.pk}
    response = logged_in(rita).post(f"/contacts/{contact.pk}/edit", fields)

    assert response.status_code == 404
    assert not Contact.objects.filter(pk=contact.pk).exists()


UNICODE_DIGIT = "\u00b2"  # "²": str.isdigit() says yes, int() says no
LONG_ID = "1" * 5000  # past int()'s 4,300 digits


@pytest.mark.parametrize("pk", [UNICODE_DIGIT, "\u0663", LONG_ID])
def test_an_account_id_int_refuses_gets_a_page_not_an_error(manny, acme, pk):
    contact = ContactFactory(name="Ana", account=acme)
    client = logged_in(manny)

    form = client.get("/contacts/new", {"account": pk})
    created = client.post("/contacts/new", {"name": "X", "account": pk})
    edited = client.post(f"/contacts/{contact.pk}/edit", {"name": "Ana B", "account": pk})

    assert form.status_code == 200
    for response in (created, edited):
        page = response.content.decode()
        assert response.status_code == 400
        assert page.count('class="message error form-error"') == 1
        assert "Account: Select a valid choice." in page
    contact.refresh_from_db()
    assert (Contact.objects.count(), contact.name) == (1, "Ana")


def test_finance_gets_no_new_contact_button(rita, north, acme):
    finance = UserFactory(username="fin", role="finance", team=north)

    assert 'id="new-contact"' in logged_in(rita).get("/contacts/").content.decode()
    assert 'id="new-contact"' not in logged_in(finance).get("/contacts/").content.decode()
    assert logged_in(finance).get("/contacts/new").status_code == 403
