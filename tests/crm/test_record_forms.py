"""Creating and editing opportunities, tasks and events: a rep's new record is theirs, a manager
gives it to someone of the team, an administrator to anyone; the account is one the user may
see (preselected from the account's page); owners and managers edit, administrators all,
nobody else; times in the user's time zone; bad input gets one line and loses nothing; a
blocked user reaches none of it."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from crm import records
from crm.models import Event, Opportunity, Task
from crm.signals import object_changed
from notifications.jobs import notify_expiring
from tests.clients import logged_in
from tests.factories import (
    AccountFactory,
    EventFactory,
    OpportunityFactory,
    ReminderRuleFactory,
    TaskFactory,
    TeamFactory,
    UserFactory,
)

BLOCKED = "/notifications/?blocked=1"


@pytest.fixture
def ravi(north):
    return UserFactory(username="ravi", first_name="Ravi", role="rep", team=north)


@pytest.fixture
def manny(north):
    return UserFactory(username="manny", first_name="Manny", role="manager", team=north)


@pytest.fixture
def sam(db):
    return UserFactory(username="sam", role="rep", team=TeamFactory(name="South"))


@pytest.fixture
def acme(north, manny):
    return AccountFactory(name="Acme", team=north, account_manager=manny)


@pytest.fixture
def southco(sam):
    return AccountFactory(name="Southco", team=sam.team, account_manager=sam)


def valid(kind: str, account) -> dict:
    """A complete form of each kind, on `account`."""
    return {
        "opportunity": {
            "name": "Big deal",
            "account": account.pk,
            "stage": "proposal",
            "amount": "1200.50",
            "expected_close": "2030-02-01",
        },
        "task": {
            "title": "Call back",
            "kind": "follow_up",
            "account": account.pk,
            "due_at": "2030-01-15T10:00",
        },
        "event": {
            "title": "Site visit",
            "account": account.pk,
            "start_at": "2030-01-15T10:00",
            "end_at": "2030-01-15T11:30",
        },
    }[kind]


MODELS = {"opportunity": Opportunity, "task": Task, "event": Event}
PLURAL = {"opportunity": "opportunities", "task": "tasks", "event": "events"}
FACTORIES = {"opportunity": OpportunityFactory, "task": TaskFactory, "event": EventFactory}
NAME = {"opportunity": "name", "task": "title", "event": "title"}
KINDS = list(MODELS)


def made(kind: str):
    return MODELS[kind].objects.select_related("owner", "account").get()


@pytest.mark.parametrize("kind", KINDS)
def test_a_rep_creates_a_record_that_is_theirs_on_a_team_account(kind, rita, acme):
    client = logged_in(rita)
    form = client.get(f"/{PLURAL[kind]}/new?account={acme.pk}")
    assert "owner" not in form.context["form"].fields
    assert f'<option value="{acme.pk}" selected>Acme</option>' in form.content.decode()

    response = client.post(f"/{PLURAL[kind]}/new", valid(kind, acme))

    record = made(kind)
    assert response.status_code == 302
    assert response["Location"] == f"/{PLURAL[kind]}/{record.pk}/"
    assert (record.owner, record.account) == (rita, acme)


@pytest.mark.parametrize("kind", KINDS)
def test_a_manager_gives_a_record_to_someone_of_the_team_only(kind, manny, rita, sam, acme):
    client = logged_in(manny)

    refused = client.post(f"/{PLURAL[kind]}/new", {**valid(kind, acme), "owner": sam.pk})
    assert refused.status_code == 400 and not MODELS[kind].objects.exists()
    assert "Owner: Select a valid choice." in refused.content.decode()

    client.post(f"/{PLURAL[kind]}/new", {**valid(kind, acme), "owner": rita.pk})
    assert made(kind).owner == rita


@pytest.mark.parametrize("kind", KINDS)
def test_another_teams_account_is_no_choice(kind, rita, acme, southco):
    client = logged_in(rita)

    page = client.get(f"/{PLURAL[kind]}/new?account={southco.pk}").content.decode()
    refused = client.post(f"/{PLURAL[kind]}/new", valid(kind, southco))

    assert "Southco" not in page and "Southco" not in refused.content.decode()
    assert refused.status_code == 400 and not MODELS[kind].objects.exists()
    assert "Account: Select a valid choice." in refused.content.decode()


@pytest.mark.parametrize("kind", KINDS)
def test_an_administrator_gives_a_record_to_anyone_on_any_account(
    kind, administrator, sam, southco
):
    logged_in(administrator).post(f"/{PLURAL[kind]}/new", {**valid(kind, southco), "owner": sam.pk})

    assert (made(kind).owner, made(kind).account) == (sam, southco)


@pytest.mark.parametrize("kind", KINDS)
def test_the_owner_a_manager_and_an_admin_edit_others_do_not(
    kind, rita, ravi, manny, sam, administrator, acme
):
    record = FACTORIES[kind](owner=rita, account=acme)
    url = f"/{PLURAL[kind]}/{record.pk}/edit"
    field = NAME[kind]

    for who in (rita, manny, administrator):
        data = {**valid(kind, acme), field: f"By {who.username}", "owner": rita.pk}
        response = logged_in(who).post(url, data)
        assert response["Location"] == f"/{PLURAL[kind]}/{record.pk}/", who
        record.refresh_from_db()
        assert (getattr(record, field), record.owner) == (f"By {who.username}", rita)

    assert logged_in(ravi).get(url).status_code == 403
    assert logged_in(ravi).post(url, valid(kind, acme)).status_code == 403
    assert logged_in(sam).post(url, valid(kind, acme)).status_code == 404
    record.refresh_from_db()
    assert getattr(record, field) == "By ada_admin"


@pytest.mark.parametrize("kind", KINDS)
def test_the_object_page_links_to_its_form_for_those_who_may_edit(kind, rita, ravi, acme):
    record = FACTORIES[kind](owner=rita, account=acme)
    edit = f'href="/{PLURAL[kind]}/{record.pk}/edit"'

    assert edit in logged_in(rita).get(f"/{PLURAL[kind]}/{record.pk}/").content.decode()
    assert edit not in logged_in(ravi).get(f"/{PLURAL[kind]}/{record.pk}/").content.decode()
    form = logged_in(rita).get(f"/{PLURAL[kind]}/{record.pk}/edit").content.decode()
    assert f'value="{getattr(record, NAME[kind])}"' in form


@pytest.mark.parametrize("kind", KINDS)
def test_an_edit_tells_the_rest_of_vigil(kind, rita, acme):
    record = FACTORIES[kind](owner=rita, account=acme)
    heard = []

    def listen(sender, **kwargs):
        heard.append((kwargs["kind"], kwargs["object_id"], kwargs["actor"]))

    object_changed.connect(listen)
    try:
        logged_in(rita).post(f"/{PLURAL[kind]}/{record.pk}/edit", valid(kind, acme))
    finally:
        object_changed.disconnect(listen)

    assert heard == [(kind, record.pk, rita)]


def test_an_edit_keeps_an_owner_who_is_no_longer_a_choice(manny, north, acme):
    gone = UserFactory(username="gone", role="rep", team=north, is_active=False)
    task = TaskFactory(owner=gone, account=acme, title="Theirs")

    response = logged_in(manny).post(
        f"/tasks/{task.pk}/edit", {**valid("task", acme), "owner": gone.pk}
    )

    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.owner, task.title) == (gone, "Call back")


def test_times_are_typed_and_shown_in_the_users_time_zone(rita, acme):
    rita.time_zone = "America/New_York"
    rita.save()
    client = logged_in(rita)

    client.post("/tasks/new", valid("task", acme))  # 10:00 in New York, in January

    task = Task.objects.get()
    assert task.due_at == datetime(2030, 1, 15, 15, 0, tzinfo=UTC)
    form = client.get(f"/tasks/{task.pk}/edit").content.decode()
    assert 'value="2030-01-15T10:00"' in form and "America/New_York" in form


def test_a_time_the_clock_skips_gets_one_line(rita, acme):
    rita.time_zone = "America/New_York"
    rita.save()

    response = logged_in(rita).post(
        "/tasks/new", {**valid("task", acme), "due_at": "2030-03-10T02:30"}
    )

    page = response.content.decode()
    assert response.status_code == 400 and not Task.objects.exists()
    assert page.count('class="message error form-error"') == 1
    assert "Due: 2030-03-10 02:30:00 couldn’t be interpreted in time zone America/New_York" in (
        page.replace("&#x27;", "'")
    )


@pytest.mark.parametrize(
    ("start", "end"),
    [("2030-01-15T10:00", "2030-01-15T09:00"), ("2030-01-15T10:00", "2030-01-15T10:00")],
)
def test_an_event_ends_after_it_starts(rita, acme, start, end):
    response = logged_in(rita).post(
        "/events/new", {**valid("event", acme), "start_at": start, "end_at": end}
    )

    page = response.content.decode()
    assert response.status_code == 400 and not Event.objects.exists()
    assert page.count('class="message error form-error"') == 1
    assert "Ends: An event ends after it starts." in page
    assert f'value="{end}"' in page and 'value="Site visit"' in page


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "This field is required."),
        ("x" * 201, "Ensure this value has at most 200 characters (it has 201)."),
        ("x" * 10_000, "Ensure this value has at most 200 characters (it has 10000)."),
        ("Call\x00back", "Null characters are not allowed."),
    ],
)
def test_a_bad_name_gets_one_line_and_keeps_what_was_typed(kind, rita, acme, text, error):
    record = FACTORIES[kind](owner=rita, account=acme)
    before = getattr(record, NAME[kind])
    client = logged_in(rita)

    for url in (f"/{PLURAL[kind]}/new", f"/{PLURAL[kind]}/{record.pk}/edit"):
        response = client.post(url, {**valid(kind, acme), NAME[kind]: text})

        page = response.content.decode()
        assert response.status_code == 400, url
        assert page.count('class="message error form-error"') == 1
        label = "Name" if kind == "opportunity" else "Title"
        assert f"{label}: {error}" in page
        if text:
            assert f'value="{text[:60]}' in page
    assert MODELS[kind].objects.count() == 1
    record.refresh_from_db()
    assert getattr(record, NAME[kind]) == before


@pytest.mark.parametrize("kind", KINDS)
def test_the_longest_name_is_saved(kind, rita, acme):
    logged_in(rita).post(f"/{PLURAL[kind]}/new", {**valid(kind, acme), NAME[kind]: "n" * 200})

    assert getattr(made(kind), NAME[kind]) == "n" * 200


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("amount", "-1", "Amount: An amount cannot be negative."),
        ("amount", "1e999999", "Amount: Ensure that there are no more than 14 digits in total."),
        ("amount", "NaN", "Amount: Enter a number."),
        ("amount", "x" * 10_000, "Amount: Enter a number."),
        ("expected_close", "2030-02-30", "Expected close: Enter a valid date."),
        ("stage", "<script>", "Stage: Select a valid choice. &lt;script&gt; is not one"),
        ("account", "1 OR 1=1", "Account: Select a valid choice."),
    ],
)
def test_hostile_opportunity_input_gets_one_line(rita, acme, field, value, error):
    response = logged_in(rita).post(
        "/opportunities/new", {**valid("opportunity", acme), field: value}
    )

    page = response.content.decode()
    assert response.status_code == 400 and not Opportunity.objects.exists()
    assert page.count('class="message error form-error"') == 1
    assert error in page


@pytest.mark.parametrize(
    ("account", "error"),
    [
        ("9" * 10_000, "Select a valid choice."),
        ("²", "Select a valid choice."),
        ("-1", "Select a valid choice."),
        ("0", "Select a valid choice."),
        ("99999999999999999999", "Select a valid choice."),
        ("1\x00", "Null characters are not allowed."),
    ],
)
def test_a_hostile_account_id_is_refused_in_one_line(rita, acme, account, error):
    client = logged_in(rita)

    form = client.get("/tasks/new", {"account": account})
    response = client.post("/tasks/new", {**valid("task", acme), "account": account})

    assert form.status_code == 200
    page = response.content.decode()
    assert response.status_code == 400 and not Task.objects.exists()
    assert page.count('class="message error form-error"') == 1
    assert f"Account: {error}" in page


@pytest.mark.parametrize("value", ["tomorrow", "2030-01-15T25:00", "\x00", "9" * 10_000])
def test_a_bad_time_gets_one_line(rita, acme, value):
    response = logged_in(rita).post("/tasks/new", {**valid("task", acme), "due_at": value})

    page = response.content.decode()
    assert response.status_code == 400 and not Task.objects.exists()
    assert page.count('class="message error form-error"') == 1
    assert "Due: " in page


def test_a_long_account_list_is_cut_and_the_preselected_one_stays(rita, north, monkeypatch):
    monkeypatch.setattr(records, "ACCOUNT_CHOICES", 2)
    accounts = [AccountFactory(name=f"Account {n}", team=north) for n in range(4)]

    page = logged_in(rita).get(f"/tasks/new?account={accounts[3].pk}").content.decode()

    assert "Account 0" in page and "Account 1" in page and "Account 2" not in page
    assert f'<option value="{accounts[3].pk}" selected>Account 3</option>' in page
    assert 'id="accounts-cut"' in page


@pytest.mark.parametrize("rows", [1, 30])
def test_a_form_runs_a_constant_number_of_queries(
    rows, manny, north, acme, django_assert_num_queries
):
    for n in range(rows):
        AccountFactory(name=f"Account {n}", team=north)
        UserFactory(username=f"rep{n}", role="rep", team=north)
    task = TaskFactory(owner=manny, account=acme)
    client = logged_in(manny)
    client.get(f"/tasks/{task.pk}/edit")

    # session, user, blocking gate, the task; the accounts listed; the owner choices
    with django_assert_num_queries(6):
        assert client.get(f"/tasks/{task.pk}/edit?account={acme.pk}").status_code == 200


def test_creating_needs_a_csrf_token(rita, acme):
    client = logged_in(rita, enforce_csrf_checks=True)

    for kind in KINDS:
        assert client.post(f"/{PLURAL[kind]}/new", valid(kind, acme)).status_code == 403
    assert not Task.objects.exists() and not Event.objects.exists()


def test_a_blocked_rep_reaches_none_of_the_forms(rita, acme):
    ReminderRuleFactory(
        name="Task overdue", object_kind="task", lead_time=timedelta(0), blocking=True
    )
    blocking = TaskFactory(owner=rita, due_at=timezone.now() - timedelta(hours=1))
    notify_expiring(timezone.now())
    mine = {kind: FACTORIES[kind](owner=rita, account=acme) for kind in KINDS}
    client = logged_in(rita)
    assert client.get(f"/tasks/{blocking.pk}/").status_code == 200  # the blocking object

    for kind in KINDS:
        for response in (
            client.get(f"/{PLURAL[kind]}/new?account={acme.pk}"),
            client.post(f"/{PLURAL[kind]}/new", valid(kind, acme)),
            client.get(f"/{PLURAL[kind]}/{mine[kind].pk}/edit"),
            client.post(f"/{PLURAL[kind]}/{mine[kind].pk}/edit", valid(kind, acme)),
        ):
            assert response["Location"] == BLOCKED, kind
    assert Task.objects.count() == 2 and Event.objects.count() == 1
    assert Opportunity.objects.get().name == mine["opportunity"].name


def test_a_blocked_rep_may_edit_the_blocking_record_to_resolve_it(rita, acme):
    ReminderRuleFactory(
        name="Task overdue", object_kind="task", lead_time=timedelta(0), blocking=True
    )
    blocking = TaskFactory(owner=rita, due_at=timezone.now() - timedelta(hours=1))
    notify_expiring(timezone.now())
    client = logged_in(rita)

    assert client.get(f"/tasks/{blocking.pk}/edit").status_code == 200
    response = client.post(f"/tasks/{blocking.pk}/edit", valid("task", acme))
    assert response.status_code == 302 and response["Location"] != BLOCKED
    blocking.refresh_from_db()
    assert blocking.title == valid("task", acme)["title"]


def test_an_edit_keeps_a_completion_made_between_loading_and_saving(rita, acme, monkeypatch):
    """The form saves its own fields only: a task completed while its edit was under way stays
    done."""
    task = TaskFactory(owner=rita, account=acme, title="Call back")
    loaded = records.get_object_or_404

    def loaded_then_completed(queryset, **lookup):
        found = loaded(queryset, **lookup)
        Task.objects.filter(pk=found.pk).update(status="done", completed_at=timezone.now())
        return found

    monkeypatch.setattr(records, "get_object_or_404", loaded_then_completed)
    response = logged_in(rita).post(
        f"/tasks/{task.pk}/edit", {**valid("task", acme), "title": "Call back soon"}
    )

    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.title, task.status) == ("Call back soon", "done") and task.completed_at


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Pacific/Kiritimati"])
@pytest.mark.parametrize("when", ["9999-12-31T23:59", "9001-01-01T00:00", "0001-01-01T00:00"])
def test_a_time_out_of_the_years_gets_one_line(rita, acme, zone, when):
    """9999-12-31 23:59 in Los Angeles is year 10000 in UTC: stored, it broke every page that
    reads it back."""
    rita.time_zone = zone
    rita.save()
    client = logged_in(rita)

    task = client.post("/tasks/new", {**valid("task", acme), "due_at": when})
    event = client.post("/events/new", {**valid("event", acme), "start_at": when})

    for response, label in ((task, "Due"), (event, "Starts")):
        page = response.content.decode()
        assert response.status_code == 400
        assert page.count('class="message error form-error"') == 1
        assert f"{label}: Give a time between the years 1900 and 9000." in page
        assert f'value="{when}"' in page
    assert not Task.objects.exists() and not Event.objects.exists()
    assert client.get(f"/accounts/{acme.pk}/").status_code == 200


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Pacific/Kiritimati"])
def test_the_first_and_last_times_allowed_are_saved_and_shown(rita, acme, zone):
    rita.time_zone = zone
    rita.save()
    client = logged_in(rita)

    for when in ("1900-01-01T00:00", "9000-12-31T23:59"):
        response = client.post("/tasks/new", {**valid("task", acme), "due_at": when})
        assert response.status_code == 302, when
        assert client.get(response["Location"]).status_code == 200
    assert client.get(f"/accounts/{acme.pk}/").status_code == 200
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("kind", KINDS)
def test_finance_creates_and_edits_no_sales_record(kind, north, acme):
    fiona = UserFactory(username="fiona", role="finance", team=north)
    record = FACTORIES[kind](owner=fiona, account=acme)  # even one of hers
    client = logged_in(fiona)

    assert client.get(f"/{PLURAL[kind]}/new?account={acme.pk}").status_code == 403
    assert client.post(f"/{PLURAL[kind]}/new", valid(kind, acme)).status_code == 403
    assert client.get(f"/{PLURAL[kind]}/{record.pk}/edit").status_code == 403
    assert client.post(f"/{PLURAL[kind]}/{record.pk}/edit", valid(kind, acme)).status_code == 403
    assert MODELS[kind].objects.count() == 1
    page = client.get(f"/{PLURAL[kind]}/{record.pk}/").content.decode()
    assert f"/{PLURAL[kind]}/{record.pk}/edit" not in page
