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


def validate_country(value: str) -> None:
    if value and value not in countries():
        raise ValidationError(
            f"“{value[:10]}” is not an ISO 3166 country code (two capitals, e.g. DE).",
            code="invalid_country",
        )
