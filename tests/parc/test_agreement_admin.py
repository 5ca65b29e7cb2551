"""Administrators and managers edit PARC agreements in the admin; bad input is refused with a
message per field; the schedule itself (periodic tasks) is for administrators only."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from crm.schedules import sync_schedules
from parc.models import Agreement
from tests.factories import AccountFactory, TeamFactory, UserFactory
from tests.parc.conftest import agreement_form

ADD = reverse("admin:parc_agreement_add")


@pytest.fixture
def staff_manager(db):
    team = TeamFactory(name="South Sales")
    return UserFactory(username="maria_manager", role="manager", team=team, is_staff=True)


@pytest.fixture
def form(staff_manager):
    account = AccountFactory(name="Acme", account_manager=staff_manager, team=staff_manager.team)
    return agreement_form(account, plan="FREQ=WEEKLY;INTERVAL=2;BYDAY=TU")


@pytest.mark.django_db
def test_a_manager_adds_an_agreement_and_sees_the_next_five_visits(client, staff_manager, form):
    client.force_login(staff_manager)

    response = client.post(ADD, form, follow=True)

    assert response.status_code == 200
    agreement = Agreement.objects.get()
    assert agreement.manager == staff_manager  # the account's, by default
    page = response.content.decode()
    assert (
        "Next five visits of Acme: Tue 05 Jan 2027, Tue 19 Jan 2027, Tue 02 Feb 2027, "
        "Tue 16 Feb 2027, Tue 02 Mar 2027." in page
    )


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"end_date": "2026-12-01"}, "end_date", "The end date is before the first visit."),
        ({"visiting_team": ""}, "visiting_team", "Choose the visiting team that makes the visits."),
        ({"visiting_team": "sales"}, "visiting_team", "Select a valid choice."),  # not offered
        ({"account_manager": "rep"}, "account_manager", "Select a valid choice."),
        ({"inspection_offset_days": "-1"}, "inspection_offset_days", "Must be zero or more days."),
        ({"follow_up_working_days": "-3"}, "follow_up_working_days", "Must be zero or more"),
        ({"plan": "FREQ=HOURLY"}, "plan", "Visits cannot be more frequent than daily."),
        ({"plan": "every tuesday"}, "plan", "This is not a recurrence rule"),
        ({"plan": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}, "plan", "This rule yields no visit"),
        ({"opportunity_name": "PARC {client}"}, "opportunity_name", "Use only {account} and"),
    ],
)
@pytest.mark.django_db
def test_bad_input_is_refused_with_a_message_on_its_field(
    client, staff_manager, form, changes, field, message
):
    special = {
        "sales": lambda: TeamFactory(name="Sales North", kind="sales").pk,
        "rep": lambda: UserFactory(username="rita_rep", role="rep").pk,
    }
    form |= {k: special[v]() if v in special else v for k, v in changes.items()}
    client.force_login(staff_manager)

    response = client.post(ADD, form)

    assert response.status_code == 200  # the form again, not a redirect
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert errors[field][0].startswith(message)
    assert not Agreement.objects.exists()


@pytest.mark.django_db
def test_a_rep_cannot_see_agreements(client):
    rep = UserFactory(username="rita_rep", role="rep", is_staff=True)
    client.force_login(rep)

    assert client.get(reverse("admin:parc_agreement_changelist")).status_code == 403
    assert client.get(ADD).status_code == 403


@pytest.mark.parametrize("role", ["rep", "manager"])
@pytest.mark.django_db
def test_only_administrators_see_or_change_the_schedule(client, role):
    sync_schedules()
    task = PeriodicTask.objects.get(name="parc_generate")
    user = UserFactory(username=f"{role}_staff", role=role, is_staff=True)
    client.force_login(user)
    change = reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])

    assert (
        client.get(reverse("admin:django_celery_beat_periodictask_changelist")).status_code == 403
    )
    assert client.get(change).status_code == 403
    assert client.post(change, {"name": "parc_generate", "enabled": ""}).status_code == 403
    assert PeriodicTask.objects.get(pk=task.pk).enabled
    assert "Periodic tasks" not in client.get(reverse("admin:index")).content.decode()


@pytest.mark.django_db
def test_the_default_schedule_is_monday_at_five(settings):
    sync_schedules()

    crontab = PeriodicTask.objects.get(name="parc_generate").crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week) == ("0", "5", "1")
    assert str(crontab.timezone) == settings.TIME_ZONE


@pytest.mark.django_db
def test_the_model_refuses_what_the_admin_does_not_offer(staff_manager):
    """Agreements made in code or by an import get the same checks as the admin's."""
    agreement = Agreement(
        account=AccountFactory(account_manager=UserFactory(username="rita_rep", role="rep")),
        visiting_team=TeamFactory(name="Sales North", kind="sales"),
        plan="FREQ=WEEKLY",
        first_visit=date(2027, 1, 5),
    )

    with pytest.raises(ValidationError) as refused:
        agreement.full_clean()

    assert refused.value.message_dict == {
        "visiting_team": ["Sales North is not a visiting team."],
        "account": ["rita_rep is not a manager."],
    }
