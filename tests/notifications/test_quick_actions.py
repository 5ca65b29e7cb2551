"""Quick actions on the dashboard: "Done" on a task row works with htmx (the row's action
cell comes back) and without JavaScript (redirect back with a message), behind CSRF, the
usual permissions and the blocking gate."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Task
from notifications import services
from notifications.models import Notification
from tests.clients import HTMX, logged_in
from tests.factories import OpportunityFactory, TaskFactory, TeamFactory, UserFactory


@pytest.fixture
def task(rita):
    return TaskFactory(owner=rita, title="Send the quote", due_at=timezone.now())


@pytest.mark.django_db
def test_the_dashboard_offers_done_on_each_task_row(rita, task):
    page = logged_in(rita).get("/").content.decode()

    assert f'hx-post="/tasks/{task.pk}/complete"' in page
    assert 'name="next" value="/"' in page


@pytest.mark.django_db
def test_done_without_javascript_redirects_back_to_the_dashboard(rita, task):
    response = logged_in(rita).post(f"/tasks/{task.pk}/complete", {"next": "/"}, follow=True)

    assert response.redirect_chain == [("/", 302)]
    assert "Task “Send the quote” completed." in response.content.decode()
    task.refresh_from_db()
    assert task.status == Task.Status.DONE


@pytest.mark.django_db
def test_done_never_redirects_off_site(rita, task):
    response = logged_in(rita).post(f"/tasks/{task.pk}/complete", {"next": "https://evil.example/"})

    assert response["Location"] == f"/tasks/{task.pk}/"


@pytest.mark.django_db
def test_done_with_htmx_returns_the_rows_action_cell(rita, task):
    response = logged_in(rita).post(f"/tasks/{task.pk}/complete", {"next": "/"}, headers=HTMX)

    assert response.status_code == 200
    assert f'data-done="{task.pk}"' in response.content.decode()
    task.refresh_from_db()
    assert task.status == Task.Status.DONE


@pytest.mark.django_db
def test_done_needs_the_csrf_token(rita, task):
    client = logged_in(rita, enforce_csrf_checks=True)

    assert client.post(f"/tasks/{task.pk}/complete", headers=HTMX).status_code == 403
    task.refresh_from_db()
    assert task.status == Task.Status.OPEN


@pytest.mark.django_db
def test_done_on_someone_elses_task_is_refused(rita, task):
    teammate = UserFactory(username="tom", role="rep", team=rita.team)
    stranger = UserFactory(username="sam", role="rep", team=TeamFactory(name="South"))

    assert logged_in(teammate).post(f"/tasks/{task.pk}/complete", headers=HTMX).status_code == 403
    assert logged_in(stranger).post(f"/tasks/{task.pk}/complete", headers=HTMX).status_code == 404
    task.refresh_from_db()
    assert task.status == Task.Status.OPEN


@pytest.mark.django_db
def test_a_blocked_rep_may_only_complete_the_blocking_task(rita, overdue_task):
    other = TaskFactory(owner=rita, due_at=timezone.now() + timedelta(days=1))
    client = logged_in(rita)

    refused = client.post(f"/tasks/{other.pk}/complete", headers=HTMX)
    allowed = client.post(f"/tasks/{overdue_task.pk}/complete", headers=HTMX)

    assert refused.status_code == 423 and refused.json()["error"] == "blocked"
    assert allowed.status_code == 200
    assert Task.objects.get(pk=other.pk).status == Task.Status.OPEN
    assert Task.objects.get(pk=overdue_task.pk).status == Task.Status.DONE
    assert client.get("/").status_code == 200  # the gate has lifted


@pytest.fixture
def reminder(rita):
    now = timezone.now()
    deal = OpportunityFactory(owner=rita, name="Acme renewal")
    return services.add_reminder(rita, "opportunity", deal.pk, now, "Ask about the budget", now)


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["snooze", "dismiss"])
def test_the_dashboard_offers_snooze_and_dismiss_on_a_reminder(rita, reminder, action):
    page = logged_in(rita).get("/").content.decode()

    assert f'hx-post="/notifications/{reminder.pk}/{action}"' in page


@pytest.mark.django_db
def test_snooze_without_javascript_hides_the_reminder_until_tomorrow(rita, reminder):
    client = logged_in(rita)
    response = client.post(f"/notifications/{reminder.pk}/snooze", {"next": "/"}, follow=True)

    assert response.redirect_chain == [("/", 302)]
    assert "Snoozed until tomorrow." in response.content.decode()
    assert "Ask about the budget" not in response.content.decode()
    reminder.refresh_from_db()
    assert reminder.status == Notification.Status.OPEN
    assert reminder.visible_from > timezone.now() + timedelta(hours=23)


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["snooze", "dismiss"])
def test_snooze_and_dismiss_with_htmx_remove_the_row(rita, reminder, action):
    response = logged_in(rita).post(f"/notifications/{reminder.pk}/{action}", headers=HTMX)

    assert (response.status_code, response.content) == (200, b"")
    assert "Ask about the budget" not in logged_in(rita).get("/").content.decode()


@pytest.mark.django_db
def test_dismiss_without_javascript_goes_back_with_a_message(rita, reminder):
    response = logged_in(rita).post(
        f"/notifications/{reminder.pk}/dismiss", {"next": "/"}, follow=True
    )

    assert response.redirect_chain == [("/", 302)]
    assert "Notification dismissed." in response.content.decode()
    reminder.refresh_from_db()
    assert reminder.status == Notification.Status.RESOLVED


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["snooze", "dismiss"])
def test_snooze_and_dismiss_need_csrf_and_the_owner(rita, reminder, action):
    teammate = UserFactory(username="tom", role="rep", team=rita.team)
    url = f"/notifications/{reminder.pk}/{action}"

    assert logged_in(rita, enforce_csrf_checks=True).post(url, headers=HTMX).status_code == 403
    assert logged_in(teammate).post(url, headers=HTMX).status_code == 404
    reminder.refresh_from_db()
    assert (reminder.status, reminder.visible_from) == (
        Notification.Status.OPEN,
        reminder.expires_at,
    )


@pytest.mark.django_db
def test_a_blocking_notification_can_be_neither_snoozed_nor_dismissed(rita, overdue_task):
    blocking = Notification.objects.get(user=rita, blocking=True)
    client = logged_in(rita)

    assert client.post(f"/notifications/{blocking.pk}/snooze", headers=HTMX).status_code == 423
    assert client.post(f"/notifications/{blocking.pk}/dismiss", headers=HTMX).status_code == 423
    blocking.refresh_from_db()
    assert blocking.status == Notification.Status.OPEN
