"""After generating, each account manager gets one summary email, grouped by account, with a
link to every record; a manager for whom nothing was generated gets none."""

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from itertools import cycle

import pytest
from django.db import connection

from mailsync.models import OutboxMessage
from notifications.models import Notification
from parc.jobs import generate_parc_visits
from parc.models import ParcVisit
from tests.factories import AccountFactory, UserFactory
from tests.parc.conftest import AgreementFactory
from tests.processes import at_once

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


def visits_in_summaries() -> Counter:
    """How many summaries queued each visit, by the opportunity each one links to."""
    return Counter(
        int(pk)
        for text in OutboxMessage.objects.filter(source="parc_generate").values_list(
            "text_body", flat=True
        )
        for pk in re.findall(r"/opportunities/(\d+)/", text)
    )


def every_visit_once() -> Counter:
    return Counter(ParcVisit.objects.values_list("opportunity_id", flat=True))


@pytest.mark.django_db
def test_a_rerun_of_the_same_as_of_sends_the_visits_made_since(two_managers):
    maria = two_managers[0]
    generate_parc_visits(MONDAY)
    AgreementFactory(account=AccountFactory(name="Estuary", account_manager=maria))

    again = generate_parc_visits(MONDAY)
    nothing_new = generate_parc_visits(MONDAY)

    assert (again["visits"], again["summaries"], again["notices"]) == (1, 1, 1)
    assert (nothing_new["visits"], nothing_new["summaries"], nothing_new["notices"]) == (0, 0, 0)
    first, second = OutboxMessage.objects.filter(to=[maria.email]).order_by("pk")
    assert "Estuary" not in first.text_body
    assert second.subject == "[Vigil] PARC: 1 visit(s) generated for 1 account(s)"
    assert "Estuary" in second.text_body and "Borealis" not in second.text_body
    assert Notification.objects.filter(user=maria).count() == 2
    assert visits_in_summaries() == every_visit_once()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_two_runners_at_once_put_each_visit_in_exactly_one_summary():
    """A manual run beside the scheduled one, for another as_of: whichever summarizes a visit,
    no visit is in two summaries and none is in none."""
    manager = UserFactory(username="maria_manager", role="manager", email="maria@vigil.example")
    for _ in range(30):
        AgreementFactory(account=AccountFactory(account_manager=manager))
    as_ofs = cycle([MONDAY, MONDAY + timedelta(minutes=1)])

    outcomes = at_once(lambda: generate_parc_visits(next(as_ofs)))

    assert len(outcomes) == 2  # both finished
    assert sum(o["visits"] for o in outcomes) == 30
    assert visits_in_summaries() == every_visit_once()
    assert len(every_visit_once()) == 30
