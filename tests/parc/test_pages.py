"""What people see of PARC: the account's agreements with every visit's four records, and the
run's notice on each account manager's dashboard leading to what was made for them."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from notifications.models import Notification
from parc.jobs import generate_parc_visits
from parc.models import ParcVisit
from tests.factories import AccountFactory, TeamFactory, UserFactory
from tests.parc.conftest import AgreementFactory

MONDAY = datetime(2027, 1, 4, 5, 0, tzinfo=UTC)


@pytest.fixture
def north(db):
    team = TeamFactory(name="North")
    maria = UserFactory(username="maria_manager", role="manager", team=team)
    account = AccountFactory(name="Acme", team=team, account_manager=maria)
    AgreementFactory(account=account)
    AgreementFactory(account=account, plan="FREQ=MONTHLY;BYDAY=1TU", active=False)
    generate_parc_visits(MONDAY)
    return maria, account


@pytest.mark.django_db
def test_the_account_page_lists_agreements_and_each_visits_records(
    client, north, django_assert_max_num_queries
):
    maria, account = north
    visit = ParcVisit.objects.get()
    client.force_login(maria)

    # The account page (tests/parc/test_account_page.py) has every section of the account.
    with django_assert_max_num_queries(15):
        page = client.get(reverse("parc:account", args=[account.pk])).content.decode()

    assert "FREQ=WEEKLY;BYDAY=TU" in page and "FREQ=MONTHLY;BYDAY=1TU (inactive)" in page
    assert "Tue 5 Jan 2027" in page and "No visit generated yet." in page
    for url in (
        reverse("opportunity_detail", args=[visit.opportunity_id]),
        reverse("task_detail", args=[visit.inspection_id]),
        reverse("task_detail", args=[visit.follow_up_id]),
        reverse("dispatch_detail", args=[visit.dispatch_id]),
    ):
        assert f'href="{url}"' in page


@pytest.mark.django_db
def test_another_team_cannot_open_the_account_page(client, north):
    _, account = north
    stranger = UserFactory(username="sam_south", role="manager", team=TeamFactory(name="South"))
    client.force_login(stranger)

    assert client.get(reverse("parc:account", args=[account.pk])).status_code == 404
    old = client.get(reverse("parc:account_agreements", args=[account.pk]), follow=True)
    assert old.redirect_chain == [(f"/accounts/{account.pk}/", 301)]
    assert old.status_code == 404


@time_machine.travel(MONDAY, tick=False)
@pytest.mark.django_db
def test_the_manager_is_told_on_the_dashboard_and_the_notice_leads_to_the_run(client, north):
    maria, _ = north
    notice = Notification.objects.get(user=maria)
    assert not notice.blocking and notice.object_kind == "notice"
    client.force_login(maria)

    dashboard = client.get(reverse("dashboard")).content.decode()
    assert "PARC run: visits generated for you on 04 Jan 2027" in dashboard
    assert f'href="{notice.link}"' in dashboard
    run_page = client.get(notice.link).content.decode()

    assert "PARC run of Mon 4 Jan 2027" in run_page and "Acme" in run_page
    assert reverse("opportunity_detail", args=[ParcVisit.objects.get().opportunity_id]) in (
        run_page
    )


@pytest.mark.django_db
def test_the_run_page_shows_a_manager_only_their_visits_and_refuses_bad_input(client, north):
    maria, _ = north
    other = UserFactory(username="mateo_manager", role="manager")
    rep = UserFactory(username="rita_rep", role="rep")
    link = Notification.objects.get(user=maria).link

    client.force_login(other)
    assert "Nothing was generated for you" in client.get(link).content.decode()
    client.force_login(rep)
    assert client.get(link).status_code == 404
    client.force_login(maria)
    assert client.get(reverse("parc:run"), {"run": "yesterday"}).status_code == 404
