"""`manage.py seed_demo`: a realistic data set around today, idempotent, printing the logins."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F, Q
from django.test import Client
from django.utils import timezone

from crm.models import RPH, Account, Contact, Dispatch, Event, Opportunity, Task, User
from finance.models import Invoice, Payment

MODELS = [User, Account, Contact, RPH, Opportunity, Task, Event, Dispatch, Invoice, Payment]


def counts():
    return {m.__name__: m.objects.count() for m in MODELS}


@pytest.mark.django_db
def test_seeding_twice_gives_the_same_data_set_and_prints_the_logins():
    out = StringIO()
    call_command("seed_demo", "--force", stdout=out)
    first = counts()
    call_command("seed_demo", "--force", stdout=StringIO())

    assert counts() == first
    assert first["Account"] == 300 and first["Invoice"] == 600 and first["Task"] > 500
    assert "admin" in out.getvalue() and "password: vigil-demo" in out.getvalue()
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("vigil-demo")
    assert User.objects.filter(role="rep", manager__role="manager").count() == 12


@pytest.mark.django_db
def test_demo_data_is_spread_around_today():
    call_command("seed_demo", "--force", stdout=StringIO())
    now = timezone.now()

    assert Task.objects.filter(status="open", due_at__lt=now).exists()  # overdue work
    assert Task.objects.filter(due_at__gt=now).exists()
    assert RPH.objects.filter(status=RPH.Status.NURTURE_P2).exists()
    assert Contact.objects.filter(status=Contact.Status.REJECTED).exists()
    assert Invoice.objects.filter(debt__gt=0).exists() and Invoice.objects.filter(debt=0).exists()


@pytest.mark.django_db
def test_it_refuses_a_shared_database_without_force():
    with pytest.raises(CommandError, match="published password"):
        call_command("seed_demo", stdout=StringIO())
    assert not User.objects.exists()


@pytest.mark.django_db
def test_every_demo_record_belongs_to_its_accounts_team():
    call_command("seed_demo", "--force", stdout=StringIO())

    assert Opportunity.objects.count() > 600
    for model in (Opportunity, Task, Event):
        with_account = model.objects.filter(account__isnull=False)
        assert with_account.exists()
        assert not with_account.exclude(owner__team=F("account__team")).exists(), model
    assert not Account.objects.exclude(account_manager__team=F("team")).exists()
    # A dispatch is its visiting team's work, owned by one of them or (PARC) by the account's
    # manager.
    assert not Dispatch.objects.exclude(
        Q(owner__team=F("team")) | Q(owner__team=F("account__team"))
    ).exists()
    assert not Invoice.objects.exclude(account__account_manager__team=F("account__team")).exists()
    assert not User.objects.filter(manager__isnull=False).exclude(manager__team=F("team")).exists()


@pytest.mark.django_db
def test_a_demo_managers_dashboard_shows_only_their_teams_accounts():
    call_command("seed_demo", "--force", stdout=StringIO())
    manager = User.objects.get(username="manager1")
    client = Client()
    client.force_login(manager)

    tasks = client.get("/").context["tasks"].rows
    accounts = Account.objects.filter(pk__in=[t["account_id"] for t in tasks])

    assert tasks and set(accounts.values_list("team_id", flat=True)) == {manager.team_id}
