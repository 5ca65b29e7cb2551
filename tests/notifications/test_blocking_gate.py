"""The blocking gate: a user with an open blocking notification can only resolve it; past its
grace deadline every session ends and login is refused until a manager unlocks them."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone

from crm.models import Task
from notifications import services
from notifications.models import AuditEvent, Notification
from tests.clients import HTMX, logged_in
from tests.factories import OpportunityFactory, TaskFactory, TeamFactory, UserFactory

BLOCKED = "/notifications/?blocked=1"


def sample_paths():
    """One concrete path for every URL pattern of the project, admin included."""

    def fill(regex: str) -> str:
        def group(m):
            return next(c for c in ("987654", "crm", "auth", "x") if re.fullmatch(m.group(2), c))

        path = re.sub(
            r"\(\?P<(\w+)>([^)]*)\)", group, regex.lstrip("^").rstrip("$").replace("\\Z", "")
        )
        return re.sub(r"\\(.)", r"\1", path)  # an escaped literal, e.g. the dot of export.csv

    def walk(patterns, prefix):
        for p in patterns:
            regex = p.pattern.regex.pattern
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + fill(regex))
            elif isinstance(p, URLPattern):
                yield "/" + prefix + fill(regex)

    return sorted(set(walk(get_resolver().url_patterns, "")))


@pytest.mark.django_db
def test_every_url_sends_a_blocked_user_to_the_resolution_list(rita, overdue_task):
    client = logged_in(rita)
    allowed = {
        "login",
        "logout",
        "health",
        "notifications:list",
        "notifications:api",
        "mailsync:unsubscribe",  # for whoever follows the link, blocked or not
        "mailsync:tracking_webhook",  # the email provider's, behind its own secret
        "calendar_feed",  # a calendar client's, by its secret key
    }
    paths = sample_paths()
    assert len(paths) > 100  # the admin's patterns are walked too

    gated = 0
    for path in paths:
        if resolve(path).view_name in allowed:
            continue
        for method in (client.get, client.post):
            response = method(path)
            assert (response.status_code, response.get("Location")) == (302, BLOCKED), path
        gated += 1
    assert gated > 100


@pytest.mark.django_db
def test_the_blocked_objects_page_and_its_actions_stay_reachable(rita, overdue_task):
    client = logged_in(rita)
    other = TaskFactory(owner=rita, due_at=timezone.now() + timedelta(days=3))

    assert client.get(f"/tasks/{overdue_task.pk}/").status_code == 200
    assert client.get(f"/tasks/{other.pk}/")["Location"] == BLOCKED
    assert client.post(f"/tasks/{other.pk}/complete")["Location"] == BLOCKED
    assert client.get("/notifications/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["dismiss", "snooze"])
def test_a_blocked_user_can_neither_dismiss_nor_snooze_another_reminder(rita, overdue_task, action):
    now = timezone.now()
    deal = OpportunityFactory(owner=rita, name="Acme renewal")
    reminder = services.add_reminder(rita, "opportunity", deal.pk, now, "Ask the budget", now)
    client = logged_in(rita)
    url = f"/notifications/{reminder.pk}/{action}"

    assert client.post(url, {"next": "/notifications/"})["Location"] == BLOCKED
    assert client.post(url, headers=HTMX).status_code == 423
    reminder.refresh_from_db()
    assert (reminder.status, reminder.visible_from) == (Notification.Status.OPEN, now)
    page = client.get("/notifications/").content.decode()
    assert "Ask the budget" in page and f"/notifications/{reminder.pk}/{action}" not in page


@pytest.mark.django_db
def test_api_and_htmx_calls_get_423(rita, overdue_task):
    client = logged_in(rita)

    api = client.get(f"/tasks/{overdue_task.pk + 1000}/", headers={"HX-Request": "true"})
    json_call = client.get("/", headers={"Accept": "application/json"})

    assert api.status_code == 423 and api.json()["error"] == "blocked"
    assert json_call.status_code == 423 and json_call.json()["resolve_at"] == BLOCKED


@pytest.mark.django_db
def test_resolving_the_task_lets_the_user_through_and_is_audited(rita, overdue_task):
    client = logged_in(rita)

    client.post(f"/tasks/{overdue_task.pk}/complete")

    assert client.get("/").status_code == 200
    mine = Notification.objects.get(user=rita, blocking=True)
    assert mine.status == "resolved"
    event = AuditEvent.objects.get(action="resolved")
    assert (event.user, event.actor, event.notification) == (rita, rita, mine)


@pytest.mark.django_db
def test_only_a_real_still_open_object_can_block(rita, overdue_task):
    client = logged_in(rita)

    Task.objects.filter(pk=overdue_task.pk).update(status=Task.Status.DONE)  # outside Vigil's UI
    assert client.get("/").status_code == 200
    Task.objects.filter(pk=overdue_task.pk).update(status=Task.Status.OPEN)
    assert client.get("/").status_code == 302
    Task.objects.filter(pk=overdue_task.pk).delete()
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_a_missed_grace_deadline_ends_every_session_and_refuses_login(rita, boss, overdue_task):
    first, second = logged_in(rita), logged_in(rita)
    assert first.get("/notifications/").status_code == 200

    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        response = first.get("/notifications/")
        assert response["Location"] == "/login/?locked=1"
        assert second.get("/")["Location"] == "/login/?next=/"  # the other browser too
        login = Client().post("/login/", {"username": "rita", "password": "pw-for-tests"})

    assert login.status_code == 200
    message = login.context["form"].non_field_errors()[0]
    assert "Your account is locked" in message and "Call Acme back" in message
    assert "Ask Bea Boss or an administrator to unlock it" in message
    assert AuditEvent.objects.filter(user=rita, action="blocked").count() == 1


@pytest.mark.django_db
def test_a_manager_unlocks_with_a_new_deadline_and_it_is_audited(rita, boss, overdue_task):
    later = timezone.now() + timedelta(hours=25)
    with time_machine.travel(later):
        assert boss_sees_locked(boss) == ["rita"]
        response = logged_in(boss).post(f"/users/{rita.pk}/unlock", {"extend_hours": 8})
        assert response.status_code == 302
        assert Client().login(username="rita", password="pw-for-tests")
        assert logged_in(rita).get("/")["Location"] == BLOCKED  # still has to resolve it

    note = Notification.objects.get(user=rita, blocking=True)
    assert abs(note.grace_deadline - (later + timedelta(hours=8))) < timedelta(seconds=5)
    event = AuditEvent.objects.get(action="unlocked")
    assert (event.user, event.actor) == (rita, boss)


def boss_sees_locked(boss):
    page = logged_in(boss).get("/team/locked/")
    return [u.username for u in page.context["locked"]]


@pytest.mark.django_db
def test_only_their_manager_or_an_administrator_may_unlock(rita, overdue_task, administrator):
    other_boss = UserFactory(username="otto", role="manager", team=TeamFactory(name="South"))
    teammate = UserFactory(username="tom", role="rep", team=rita.team)

    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        for user in (other_boss, teammate):
            assert (
                logged_in(user).post(f"/users/{rita.pk}/unlock", {"extend_hours": 8}).status_code
                == 403
            )
        assert (
            logged_in(administrator)
            .post(f"/users/{rita.pk}/unlock", {"extend_hours": 8})
            .status_code
            == 302
        )


@pytest.mark.django_db
def test_an_administrator_is_never_locked_out_of_the_admin(administrator, compliance_rule):
    TaskFactory(owner=administrator, due_at=timezone.now() - timedelta(hours=1))
    from notifications.jobs import notify_expiring

    notify_expiring(timezone.now())
    with time_machine.travel(timezone.now() + timedelta(days=3)):
        client = Client()
        assert client.login(username="ada_admin", password="pw-for-tests")
        assert client.get("/admin/").status_code == 200
        assert client.get("/admin/crm/task/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(("blocked", "queries"), [(False, 1), (True, 2)])
def test_the_gate_costs_one_small_query_and_a_second_when_something_blocks(
    rita, compliance_rule, settings, blocked, queries
):
    if blocked:
        TaskFactory(owner=rita, due_at=timezone.now() - timedelta(hours=1))
        from notifications.jobs import notify_expiring

        notify_expiring(timezone.now())
    client = logged_in(rita)

    with CaptureQueriesContext(connection) as gated:
        client.get("/notifications/")
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("BlockingGate")]
    client = logged_in(rita)  # a new client loads the middleware anew
    with CaptureQueriesContext(connection) as ungated:
        client.get("/notifications/")

    assert len(gated) - len(ungated) == queries


@pytest.mark.django_db
def test_a_locked_users_sessions_record_the_lock_once_per_episode(rita, boss, overdue_task):
    def a_session_that_outlived_the_lock():  # e.g. one signed in by a path that let it
        rita.refresh_from_db()
        return logged_in(rita)

    def blocked_rows():
        return AuditEvent.objects.filter(user=rita, action="blocked").count()

    later = timezone.now() + timedelta(hours=25)
    with time_machine.travel(later):
        for _ in range(3):
            response = a_session_that_outlived_the_lock().get("/")
            assert response["Location"] == "/login/?locked=1"
        assert blocked_rows() == 1
        logged_in(boss).post(f"/users/{rita.pk}/unlock", {"extend_hours": 8})

    with time_machine.travel(later + timedelta(hours=9)):  # the new deadline passed too
        for _ in range(2):
            response = a_session_that_outlived_the_lock().get("/")
            assert response["Location"] == "/login/?locked=1"
    assert blocked_rows() == 2


@pytest.mark.django_db
def test_the_blocked_objects_reminder_form_stays_usable(rita, overdue_task):
    client = logged_in(rita)
    other = TaskFactory(owner=rita, due_at=timezone.now() + timedelta(days=3))
    when = (timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")

    mine = client.post(
        "/notifications/remind",
        {"kind": "task", "object_id": overdue_task.pk, "remind_at": when, "note": "Call at 9"},
    )
    elsewhere = client.post(
        "/notifications/remind", {"kind": "task", "object_id": other.pk, "remind_at": when}
    )
    disguised = client.post(
        "/notifications/remind", {"kind": "event", "object_id": overdue_task.pk, "remind_at": when}
    )

    assert mine["Location"] == f"/tasks/{overdue_task.pk}/"
    assert elsewhere["Location"] == BLOCKED and disguised["Location"] == BLOCKED
    assert Notification.objects.get(note="Call at 9").object_id == overdue_task.pk
    assert Notification.objects.filter(source__startswith="reminder:").count() == 1


@pytest.mark.django_db
def test_anonymous_api_calls_get_401_json_not_the_login_page():
    response = Client().get("/api/notifications/", headers={"Accept": "application/json"})

    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert response.json()["login"] == "/login/"
    assert Client().get("/")["Location"] == "/login/?next=/"  # pages still go to the login


@pytest.mark.django_db
def test_an_unsubscribe_link_works_for_a_blocked_user_too(rita, overdue_task):
    from mailsync.suppression import unsubscribe_url

    path = unsubscribe_url("rita@client.example").split("://", 1)[1].partition("/")[2]

    response = logged_in(rita).get(f"/{path}")

    assert response.status_code == 200 and b"unsubscribe" in response.content.lower()
