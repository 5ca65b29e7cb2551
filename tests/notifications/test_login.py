"""Signing in: the site's login and the admin's refuse a locked-out user with one message."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from crm.models import User

UNLOCK = "Ask Bea Boss or an administrator to unlock it."


def sign_in(path: str, username: str):
    return Client().post(
        path, {"username": username, "password": "pw-for-tests", "next": "/admin/"}
    )


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_a_locked_user_is_refused_by_every_login_with_the_same_message(rita, overdue_task, path):
    User.objects.filter(pk=rita.pk).update(is_staff=True)  # staff may use the admin's login

    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        response = sign_in(path, "rita")

    assert response.status_code == 200
    assert "_auth_user_id" not in response.wsgi_request.session
    [message] = response.context["form"].non_field_errors()
    assert message.startswith("Your account is locked: “Task overdue: Call Acme back”")
    assert message.endswith(UNLOCK)


@pytest.mark.django_db
def test_staff_sign_in_to_the_admin_until_locked(rita, overdue_task):
    User.objects.filter(pk=rita.pk).update(is_staff=True)

    assert sign_in("/admin/login/", "rita")["Location"] == "/admin/"  # blocked, not locked


@pytest.mark.django_db
def test_an_administrator_always_signs_in_to_the_admin(administrator, compliance_rule):
    from notifications.jobs import notify_expiring
    from tests.factories import TaskFactory

    TaskFactory(owner=administrator, due_at=timezone.now() - timedelta(hours=1))
    notify_expiring(timezone.now())

    with time_machine.travel(timezone.now() + timedelta(days=3)):
        assert sign_in("/admin/login/", "ada_admin")["Location"] == "/admin/"


@pytest.mark.django_db
def test_the_admins_login_still_refuses_non_staff(rita):
    response = sign_in("/admin/login/", "rita")

    assert response.status_code == 200
    assert "staff account" in response.context["form"].non_field_errors()[0]
