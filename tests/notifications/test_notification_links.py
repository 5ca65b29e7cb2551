"""A notification's link leads to a page of this site or an http(s) address, nothing a browser
could run as script: checked in the model (and so the admin), never rendered when a row stored
before the check holds one, and neutralised in existing rows by the migration."""

import importlib

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.utils import timezone

from notifications import services
from notifications.models import Notification, ObjectKind
from tests.clients import logged_in
from tests.factories import TaskFactory

UNSAFE = [
    "javascript:alert(1)",
    " JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "\x01javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/",
    "\\\\evil.example",
    "/\\evil.example",
    "/\t/evil.example",
    "https:evil.example",
    "ftp://files.example/",
]
SAFE = [
    "/",
    "/parc/run/?run=2026-11-02",
    "https://status.example/incident/4",
    "http://intra.example",
]


def notice(user, link, source="test:notice"):
    now = timezone.now()
    services.notify([user.pk], source=source, title="Mailbox to reconnect", link="/", at=now)
    row = Notification.objects.get(user=user, source=source)
    Notification.objects.filter(pk=row.pk).update(link=link)  # as stored before the check
    row.link = link
    return row


@pytest.mark.django_db
@pytest.mark.parametrize("link", UNSAFE)
def test_the_model_refuses_a_link_that_is_not_a_page_or_http(rep, link):
    row = notice(rep, "/")
    row.link = link

    with pytest.raises(ValidationError) as refused:
        row.full_clean()

    assert list(refused.value.message_dict) == ["link"]


@pytest.mark.django_db
@pytest.mark.parametrize("link", SAFE)
def test_the_model_accepts_site_paths_and_http_addresses(rep, link):
    row = notice(rep, "/")
    row.link = link

    row.full_clean()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/notifications/", "/"])
def test_a_stored_script_link_is_shown_as_text_not_a_link(rep, path):
    notice(rep, "javascript:alert(document.cookie)")

    page = logged_in(rep).get(path).content.decode()

    assert "Mailbox to reconnect" in page
    assert "javascript:" not in page


@pytest.mark.django_db
def test_the_api_gives_no_url_for_a_stored_script_link(rep):
    notice(rep, " javascript:alert(1)")

    [row] = logged_in(rep).get("/api/notifications/").json()["notifications"]

    assert row["url"] == ""


@pytest.mark.django_db
def test_the_admin_refuses_a_script_link(administrator, rep):
    row = notice(rep, "/")
    now = timezone.localtime()
    form = {
        "user": rep.pk,
        "source": row.source,
        "object_kind": ObjectKind.NOTICE,
        "object_id": 0,
        "title": row.title,
        "link": "javascript:alert(1)",
        "status": "open",
        **{
            f"{name}_{i}": now.strftime(("%Y-%m-%d", "%H:%M:%S")[i])
            for i in (0, 1)
            for name in ("expires_at", "visible_from", "created_at")
        },
    }

    response = logged_in(administrator).post(
        f"/admin/notifications/notification/{row.pk}/change/", form
    )

    assert response.status_code == 200  # the form again, with its error
    assert "Give a path on this site" in response.content.decode()
    assert Notification.objects.get(pk=row.pk).link == "/"


@pytest.mark.django_db
def test_the_migration_neutralises_stored_unsafe_links(rep):
    migration = importlib.import_module("notifications.migrations.0004_safe_links")
    script_notice = notice(rep, "javascript:alert(1)", source="test:1")
    page_notice = notice(rep, "/parc/run/", source="test:2")
    task = TaskFactory(owner=rep)
    reminder = services.add_reminder(rep, "task", task.pk, timezone.now(), "", timezone.now())
    Notification.objects.filter(pk=reminder.pk).update(link="//evil.example/")

    migration.neutralise_unsafe_links(apps, None)

    links = dict(Notification.objects.values_list("pk", "link"))
    assert links == {script_notice.pk: "/", page_notice.pk: "/parc/run/", reminder.pk: ""}
