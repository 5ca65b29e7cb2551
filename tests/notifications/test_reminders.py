"""A user's own reminders, added from the "Remind me" form of any object page."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from notifications.models import Notification
from tests.factories import TaskFactory, UserFactory


@pytest.fixture
def rita(db):
    client = Client()
    client.force_login(UserFactory(username="rita", role="rep"))
    return client


@pytest.mark.parametrize(
    "referer",
    [
        "https://evil.example/phish",
        "//evil.example/phish",
        "http://testserver.evil.example/",
        "javascript:alert(1)",
        "",
    ],
)
@pytest.mark.django_db
def test_a_bad_reminder_goes_back_only_to_our_own_pages(rita, referer):
    response = rita.post(
        "/notifications/remind", {"kind": "task", "object_id": "x"}, headers={"Referer": referer}
    )

    assert (response.status_code, response["Location"]) == (302, "/")
    [message] = get_messages(response.wsgi_request)
    assert str(message) == "Reminder not saved: give a date and time."
    assert not Notification.objects.exists()


@pytest.mark.django_db
def test_a_bad_reminder_returns_to_the_page_it_came_from(rita):
    task = TaskFactory()
    page = f"http://testserver/tasks/{task.pk}/"

    response = rita.post(
        "/notifications/remind",
        {"kind": "task", "object_id": task.pk, "remind_at": "soon"},
        headers={"Referer": page},
    )

    assert response["Location"] == page
