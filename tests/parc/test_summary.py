"""After generating, each account manager gets one summary email, grouped by account, with a
link to every record; a manager for whom nothing was generated gets none."""

from datetime import UTC, date, datetime, timedelta

import pytest

from mailsync.models import OutboxMessage
from parc.jobs import generate_parc_visits
from tests.factories import AccountFactory, UserFactory
from tests.parc.conftest import AgreementFactory

MONDAY = datetime(2027, 1, 4, 5, 0, tzinfo=UTC)


@pytest.fixture
def two_managers(db):
    maria = UserFactory(username="maria_manager", role="manager", email="maria@vigil.example")
    mateo = UserFactory(username="mateo_manager", role="manager", email="mateo@vigil.example")
    idle = UserFactory(username="ines_manager", role="manager", email="ines@vigil.example")
    acme = AccountFactory(name="Acme <Labs>", account_manager=maria)
    AgreementFactory(account=acme)
    AgreementFactory(account=acme, plan="FREQ=WEEKLY;BYDAY=TH")
    AgreementFactory(account=AccountFactory(name="Borealis", account_manager=maria))
    AgreementFactory(account=AccountFactory(name="Cobalt", account_manager=mateo))
    AgreementFactory(
        account=AccountFactory(name="Dormant", account_manager=idle), first_visit=date(2027, 6, 1)
    )
    return maria, mateo, idle


@pytest.mark.django_db
def test_one_summary_per_manager_grouped_by_account(two_managers, settings):
    settings.VIGIL_SITE_URL = "https://crm.example.com"

    counts = generate_parc_visits(MONDAY)

    assert counts["visits"] == 4 and counts["summaries"] == 2
    mail = {m.to[0]: m for m in OutboxMessage.objects.filter(source="parc_generate")}
    assert set(mail) == {"maria@vigil.example", "mateo@vigil.example"}  # not ines
    maria = mail["maria@vigil.example"]
    assert maria.subject == "[Vigil] PARC: 3 visit(s) generated for 2 account(s)"
    text = maria.text_body
    assert text.index("Acme <Labs>") < text.index("Borealis")  # plain text is not escaped
    assert "Visit on Tuesday 5 January 2027" in text and "Visit on Thursday 7 January 2027" in text
    assert text.count("https://crm.example.com/opportunities/") == 3
    assert text.count("https://crm.example.com/tasks/") == 6
    assert text.count("https://crm.example.com/dispatches/") == 3
    assert "Acme &lt;Labs&gt;" in maria.html_body and "<a href=" in maria.html_body
    assert "Cobalt" not in text and "Cobalt" in mail["mateo@vigil.example"].text_body


@pytest.mark.django_db
def test_no_summary_when_nothing_was_generated(two_managers):
    generate_parc_visits(MONDAY)
    sent = OutboxMessage.objects.count()

    counts = generate_parc_visits(MONDAY + timedelta(hours=1))

    assert counts["summaries"] == 0 and OutboxMessage.objects.count() == sent


@pytest.mark.django_db
def test_the_same_run_again_queues_no_second_summary(two_managers):
    generate_parc_visits(MONDAY)
    generate_parc_visits(MONDAY)

    assert OutboxMessage.objects.filter(source="parc_generate").count() == 2
