"""Blocking notifications set by people: a rep's own hard deadline, a manager's for a member of
their team, an administrator's for anyone. They go through the system's gate, lock-out, unlock
and audit trail; the form refuses a past deadline, an object the target does not own and a
target outside the manager's team."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from crm.models import Task
from notifications.models import AuditEvent, Notification
from tests.clients import logged_in
from tests.factories import TaskFactory, TeamFactory, UserFactory

NEW = "/notifications/blocking/new"


def form(target, task, hours=4):
    resolve_by = timezone.localtime(timezone.now() + timedelta(hours=hours))
    return {
        "target": target.pk,
        "kind": "task",
        "object_id": task.pk,
        "resolve_by": resolve_by.strftime("%Y-%m-%dT%H:%M"),
    }


@pytest.fixture
def member(manager):
    return UserFactory(username="mia_member", role="rep", team=manager.team, manager=manager)


@pytest.mark.django_db
def test_a_manager_blocks_a_team_member_who_then_can_only_resolve_it(manager, member):
    task = TaskFactory(owner=member, due_at=timezone.now() + timedelta(days=3))

    response = logged_in(manager).post(NEW, form(member, task))

    assert response.status_code == 302
    notice = Notification.objects.get(user=member)
    assert notice.blocking and "set by" in notice.title
    blocked = logged_in(member)
    assert blocked.get("/").status_code == 302  # the gate sends them to what blocks them
    assert blocked.get(f"/tasks/{task.pk}/").status_code == 200
    blocked.post(f"/tasks/{task.pk}/complete")
    assert Task.objects.get(pk=task.pk).status == Task.Status.DONE
    assert blocked.get("/").status_code == 200
    assert AuditEvent.objects.filter(user=member, action="resolved").count() == 1


@pytest.mark.django_db
def test_past_the_deadline_the_member_is_locked_out_and_the_manager_unlocks(manager, member):
    task = TaskFactory(owner=member, due_at=timezone.now() + timedelta(days=3))
    logged_in(manager).post(NEW, form(member, task, hours=1))
    credentials = {"username": member.username, "password": "pw-for-tests"}
    session = logged_in(member)

    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        assert session.get("/notifications/")["Location"] == "/login/?locked=1"
        refused = Client().post("/login/", credentials)
        response = logged_in(manager).post(f"/users/{member.pk}/unlock", {"extend_hours": 24})
        accepted = Client().post("/login/", credentials)

    assert "Your account is locked" in refused.context["form"].non_field_errors()[0]
    assert (response.status_code, accepted.status_code) == (302, 302)
    assert AuditEvent.objects.filter(user=member, action="blocked").count() == 1
    assert AuditEvent.objects.filter(user=member, action="unlocked", actor=manager).exists()


@pytest.mark.django_db
def test_a_rep_sets_a_hard_deadline_for_themselves_only(rep):
    own = TaskFactory(owner=rep, due_at=timezone.now() + timedelta(days=1))
    colleague = UserFactory(role="rep", team=rep.team)
    theirs = TaskFactory(owner=colleague, due_at=timezone.now() + timedelta(days=1))
    client = logged_in(rep)

    refused = client.post(NEW, form(colleague, theirs))
    assert client.post(NEW, form(rep, own)).status_code == 302

    assert "target" in refused.context["form"].errors
    assert list(Notification.objects.values_list("user", "blocking")) == [(rep.pk, True)]


@pytest.mark.django_db
def test_the_form_says_what_is_wrong(manager, member):
    outsider = UserFactory(role="rep", team=TeamFactory(name="South"))
    member_task = TaskFactory(owner=member, due_at=timezone.now() + timedelta(days=1))
    outsider_task = TaskFactory(owner=outsider, due_at=timezone.now() + timedelta(days=1))
    client = logged_in(manager)

    past = client.post(NEW, form(member, member_task, hours=-1)).context["form"].errors
    not_theirs = client.post(NEW, form(member, outsider_task)).context["form"].errors
    outside = client.post(NEW, form(outsider, outsider_task)).context["form"].errors

    assert past["resolve_by"] == ["Choose a time in the future."]
    assert "belongs to" in not_theirs["object_id"][0]
    assert "target" in outside
    assert not Notification.objects.exists()


@pytest.mark.django_db
def test_a_deadline_out_of_the_years_is_refused(manager, member):
    member_task = TaskFactory(owner=member, due_at=timezone.now() + timedelta(days=1))
    data = {**form(member, member_task), "resolve_by": "9999-12-31T23:59"}

    errors = logged_in(manager).post(NEW, data).context["form"].errors

    assert errors["resolve_by"] == ["Give a time between the years 1900 and 9000."]
    assert not Notification.objects.exists()


@pytest.mark.django_db
def test_an_administrator_may_block_anyone(administrator, member):
    task = TaskFactory(owner=member, due_at=timezone.now() + timedelta(days=1))

    assert logged_in(administrator).post(NEW, form(member, task)).status_code == 302
    assert Notification.objects.get(user=member).blocking
