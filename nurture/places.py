"""Where a lead is, for sending in its working day: a time zone, and the country whose public
holidays it keeps. The lead's own time zone and country first, then its contact's account's
country, then the company's (TIME_ZONE, and the working calendar's holiday region)."""

from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from django.conf import settings

from crm.countries import zones_of
from crm.models import RPH, WorkingCalendar, time_zones

# zone.tab lists a country's zones in geographic order (Australia's first is Lord_Howe, Canada's
# St_Johns, Russia's Kaliningrad, Brazil's Noronha). Where the first is not where most of the
# country lives and works, the zone of its capital or largest city; every other country with
# several zones has its main one first already (tests/nurture/test_places.py checks both).
MAIN_ZONES = {
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "FM": "Pacific/Pohnpei",
    "MX": "America/Mexico_City",
    "PS": "Asia/Hebron",
    "RU": "Europe/Moscow",
    "UA": "Europe/Kyiv",
    "US": "America/New_York",
    "UZ": "Asia/Tashkent",
}


@dataclass(frozen=True)
class Place:
    zone: str
    country: str = ""
    subdivision: str = ""


def main_zone(country: str) -> str:
    """The zone most of the country works in; "" for a code zone.tab does not know."""
    return MAIN_ZONES.get(country) or next(iter(zones_of(country)), "")


@cache
def _countries_by_zone() -> dict[str, str]:
    # tzdata's zone.tab, as crm.countries reads it: country code, coordinates, zone, comment.
    text = files("tzdata.zoneinfo").joinpath("zone.tab").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return {row[2]: row[0] for row in rows}


def country_of_zone(zone: str) -> str:
    """The country zone.tab files the zone under; "" for UTC, an alias, or no zone."""
    return _countries_by_zone().get(zone, "")


def company_place() -> Place:
    # Read, not created (WorkingCalendar.current would): two runners at once would make two.
    calendar = WorkingCalendar.objects.order_by("pk").first() or WorkingCalendar()
    return Place(settings.TIME_ZONE, calendar.holiday_country, calendar.holiday_subdivision)


def place(time_zone: str, country: str, account_country: str, company: Place) -> Place:
    """A lead's place from its own time zone and country and its account's country (each
    possibly blank). The lead's own data wins: a lead with a zone but no country keeps the
    holidays of its zone's country, not its account's."""
    zone = time_zone if time_zone in time_zones() else ""
    zone = zone or main_zone(country) or main_zone(account_country)
    country = country or country_of_zone(time_zone) or account_country
    if not country and not zone:
        return company
    return Place(zone or company.zone, country)


def place_of(rph: RPH, company: Place) -> Place:
    """The place of a lead loaded with its contact and the contact's account."""
    contact = rph.contact
    account_country = contact.account.country if contact is not None else ""
    return place(rph.time_zone, rph.country, account_country, company)


def described(rph: RPH) -> str:
    """The lead's time zone and where it comes from, for its page (no query: its contact and
    account loaded)."""
    contact = rph.contact
    account_country = contact.account.country if contact is not None else ""
    if rph.time_zone in time_zones():
        return rph.time_zone
    for country, whose in ((rph.country, "its country"), (account_country, "its account's")):
        if main_zone(country):
            return f"{main_zone(country)} ({whose}, {country})"
    return f"{settings.TIME_ZONE} (the company's)"
