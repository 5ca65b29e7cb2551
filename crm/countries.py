"""Countries by their ISO 3166 code, and the time zones each one uses, from the IANA tables the
`tzdata` package ships (the same data as the zones themselves)."""

from functools import cache
from importlib.resources import files

from django.core.exceptions import ValidationError


def _table(name: str) -> list[list[str]]:
    text = files("tzdata.zoneinfo").joinpath(name).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


@cache
def countries() -> dict[str, str]:
    """Code → name, e.g. "DE" → "Germany"."""
    return {row[0]: row[1] for row in _table("iso3166.tab")}


@cache
def zones_of(country: str) -> tuple[str, ...]:
    """The zones of a country in zone.tab's order, which is geographic, not by importance
    (Australia's first is Lord_Howe); none for a code not known."""
    return tuple(row[2] for row in _table("zone.tab") if row[0] == country)


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


def main_zone(country: str) -> str:
    """The zone most of the country works in; "" for a code zone.tab does not know."""
    return MAIN_ZONES.get(country) or next(iter(zones_of(country)), "")


@cache
def _countries_by_zone() -> dict[str, str]:
    return {row[2]: row[0] for row in _table("zone.tab")}


def country_of_zone(zone: str) -> str:
    """The country zone.tab files the zone under; "" for UTC, an alias, or no zone."""
    return _countries_by_zone().get(zone, "")


def validate_country(value: str) -> None:
    if value and value not in countries():
        raise ValidationError(
            f"“{value[:10]}” is not an ISO 3166 country code (two capitals, e.g. DE).",
            code="invalid_country",
        )
