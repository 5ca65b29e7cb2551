"""Administrators see the error events in the admin, search them and mark them resolved; a
resolved error that happens again is reopened and flagged as a regression."""

import logging
from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import Permission

from monitoring.models import ErrorEvent

log = logging.getLogger("tests.monitoring.admin")
CHANGELIST = "/admin/monitoring/errorevent/"


@pytest.fixture
def events(db):
    log.error("invoice %s could not be priced", 1)
    log.error("mailbox %s refused the login", "x@vigil.example")
    return {e.title: e for e in ErrorEvent.objects.all()}


@pytest.mark.django_db
def test_administrators_list_and_search_error_events(client, administrator, events):
    client.force_login(administrator)

    everything = client.get(CHANGELIST).content.decode()
    found = client.get(CHANGELIST, {"q": "priced"}).content.decode()

    assert "could not be priced" in everything and "refused the login" in everything
    assert "could not be priced" in found and "refused the login" not in found


@pytest.mark.django_db
def test_a_resolved_error_that_happens_again_is_reopened_as_a_regression(
    client, administrator, events
):
    event = events["tests.monitoring.admin: invoice %s could not be priced"]
    client.force_login(administrator)

    client.post(CHANGELIST, {"action": "mark_resolved", "_selected_action": [event.pk]})

    event.refresh_from_db()
    assert event.status == ErrorEvent.Status.RESOLVED
    assert event.resolved_by == administrator
    with time_machine.travel(datetime(2027, 3, 1, 9, 0, tzinfo=UTC), tick=False):
        log.error("invoice %s could not be priced", 2)
    event.refresh_from_db()
    assert event.status == ErrorEvent.Status.OPEN
    assert event.regression is True
    assert event.reopened_at == datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
    assert event.count == 2
    regressions = client.get(CHANGELIST, {"regression": "yes"}).content.decode()
    assert "could not be priced" in regressions and "refused the login" not in regressions


@pytest.mark.django_db
def test_staff_who_may_only_look_cannot_resolve(client, manager, events):
    manager.is_staff = True
    manager.save()
    manager.user_permissions.add(Permission.objects.get(codename="view_errorevent"))
    client.force_login(manager)
    event = next(iter(events.values()))

    page = client.get(CHANGELIST)
    client.post(CHANGELIST, {"action": "mark_resolved", "_selected_action": [event.pk]})

    assert page.status_code == 200
    assert "mark_resolved" not in page.content.decode()
    event.refresh_from_db()
    assert event.status == ErrorEvent.Status.OPEN


@pytest.mark.django_db
def test_an_events_page_shows_its_traceback_and_context(client, administrator):
    try:
        {}["missing"]
    except KeyError:
        log.exception("lookup failed")
    client.force_login(administrator)

    page = client.get(f"{CHANGELIST}{ErrorEvent.objects.get().pk}/change/").content.decode()

    assert "Traceback (most recent call last)" in page
    assert "KeyError: &#x27;missing&#x27;" in page
