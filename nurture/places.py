"""Where a lead is, for sending in its working day: a time zone, and the country whose public
holidays it keeps. The lead's own time zone and country first, then its contact's account's
country, then the company's (TIME_ZONE, and the working calendar's holiday region)."""

from dataclasses import dataclass

from django.conf import settings

from crm.countries import country_of_zone, main_zone
from crm.models import RPH, WorkingCalendar, time_zones


@dataclass(frozen=True)
class Place:
    zone: str
    country: str = ""
    subdivision: str = ""


def company_place() -> Place:
    calendar = WorkingCalendar.read()
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
