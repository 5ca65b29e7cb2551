"""Where a lead is for its nurture emails: its own time zone, else its country's main zone,
else its contact's account's country's, else the company's; holidays of its own country
first (or its zone's), then its account's, then the company's region."""

import pytest

from crm.countries import MAIN_ZONES, countries, main_zone, zones_of
from crm.models import WorkingCalendar
from nurture.places import Place, company_place, place, place_of
from tests.factories import AccountFactory, ContactFactory
from tests.nurture.conftest import RPHFactory

COMPANY = Place("Europe/Berlin", "DE", "BY")


@pytest.mark.parametrize(
    ("country", "zone"),
    [
        ("AU", "Australia/Sydney"),  # zone.tab's first: Australia/Lord_Howe
        ("CA", "America/Toronto"),  # America/St_Johns
        ("RU", "Europe/Moscow"),  # Europe/Kaliningrad
        ("BR", "America/Sao_Paulo"),  # America/Noronha
        ("US", "America/New_York"),
        ("DE", "Europe/Berlin"),
        ("JP", "Asia/Tokyo"),  # one zone
        ("", ""),
        ("XX", ""),
    ],
)
def test_a_country_has_the_zone_most_of_it_works_in(country, zone):
    assert main_zone(country) == zone


def test_every_main_zone_is_one_of_its_countrys_zones():
    for country, zone in MAIN_ZONES.items():
        assert zone in zones_of(country), country
        assert len(zones_of(country)) > 1, f"{country} has one zone: no entry needed"
    assert all(main_zone(code) in zones_of(code) for code in countries() if zones_of(code))


@pytest.mark.parametrize(
    ("lead_zone", "lead_country", "account_country", "expected"),
    [
        ("America/Chicago", "US", "DE", Place("America/Chicago", "US")),
        ("", "US", "DE", Place("America/New_York", "US")),
        ("", "", "AU", Place("Australia/Sydney", "AU")),
        # A zone of its own, no country: the holidays of the zone's country, not the account's.
        ("Asia/Tokyo", "", "DE", Place("Asia/Tokyo", "JP")),
        ("UTC", "", "", Place("UTC", "")),
        ("", "", "", COMPANY),
        ("Not/AZone", "", "", COMPANY),  # written by SQL, past the validator
        ("", "BV", "", Place("Europe/Berlin", "BV")),  # a country with no zone of its own
    ],
)
def test_a_leads_place(lead_zone, lead_country, account_country, expected):
    assert place(lead_zone, lead_country, account_country, COMPANY) == expected


@pytest.mark.django_db
def test_a_lead_is_placed_through_its_contacts_account():
    account = AccountFactory(country="CA")
    rph = RPHFactory(contact=ContactFactory(account=account))

    assert place_of(rph, COMPANY) == Place("America/Toronto", "CA")
    assert place_of(RPHFactory(), COMPANY) == COMPANY


@pytest.mark.django_db
def test_the_company_is_where_the_working_calendar_says(settings):
    settings.TIME_ZONE = "Europe/Paris"
    assert company_place() == Place("Europe/Paris", "", "")
    WorkingCalendar.objects.create(holiday_country="FR")

    assert company_place() == Place("Europe/Paris", "FR", "")
