"""ISO 4217 currencies an invoice can be in, and each one's minor unit (decimal places).

From the ISO 4217 list of current currencies (list one, SIX, as published in February 2026),
without the units that are not money (gold, SDR, test and "no currency" codes, X?? with no
minor unit), plus the codes withdrawn since 2023 that invoices issued before may still carry
(ANG, BGN, CUC, HRK, SLL, ZWL). Every currency has 2 decimals except those in MINOR_UNITS.
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.formats import number_format


def _listed(codes: str) -> list[str]:
    return codes.split()


CURRENCIES = frozenset(
    _listed("""
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN
    BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP
    ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR
    ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD
    MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR
    PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL
    THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF
    XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL
    """)
)

MINOR_UNITS = {
    **dict.fromkeys(
        _listed("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"), 0
    ),
    **dict.fromkeys(_listed("BHD IQD JOD KWD LYD OMR TND"), 3),
    **dict.fromkeys(_listed("CLF UYW"), 4),
}
DEFAULT_MINOR_UNIT = 2
# The most decimals any currency has: how many the amount columns keep.
MAX_MINOR_UNIT = 4


def company_currency() -> str:
    """The company's own currency (VIGIL_CURRENCY): a new invoice's default."""
    return settings.VIGIL_CURRENCY


def validate_currency(code: str) -> None:
    if code not in CURRENCIES:
        raise ValidationError(
            "%(code)s is not an ISO 4217 currency code (three capital letters, such as EUR).",
            params={"code": repr(code)},
            code="currency",
        )


def minor_unit(code: str) -> int:
    """Decimal places of the currency: JPY 0, EUR 2, KWD 3."""
    return MINOR_UNITS.get(code, DEFAULT_MINOR_UNIT)


def decimals(amount: Decimal) -> int:
    """Decimal places the amount has, trailing zeros aside (1000.1250: 3). Read from its digits,
    not through normalize(), which rounds in the decimal context: 1e-999999999 has 999999999."""
    sign, digits, exponent = Decimal(amount).as_tuple()
    if not isinstance(exponent, int) or not any(digits):
        return 0  # not a finite number, or zero
    zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + zeros))


def shown(amount: Decimal) -> str:
    """An amount for a message: plainly when short, else in E notation (1E+999999999 would be
    a billion characters written out)."""
    amount = Decimal(amount)
    if amount.is_finite() and -30 < amount.adjusted() < 30:
        return f"{amount.quantize(Decimal(1).scaleb(-decimals(amount))):f}"
    return str(amount)


def validate_minor_unit(amount: Decimal | None, code: str) -> None:
    """An amount must be a whole number of the currency's minor unit: refused, never rounded."""
    if amount is None or code not in CURRENCIES or decimals(amount) <= minor_unit(code):
        return
    places = minor_unit(code)
    raise ValidationError(
        "%(amount)s has more decimals than %(code)s allows (%(places)s).",
        params={"amount": shown(amount), "code": code, "places": places},
        code="minor_unit",
    )


def _to_places(amount: Decimal, code: str) -> tuple[Decimal, int]:
    """The amount with the currency's decimals and any further ones it has, and how many."""
    places = max(minor_unit(code), decimals(amount))
    return Decimal(amount).quantize(Decimal(1).scaleb(-places)), places


def plain(amount: Decimal, code: str) -> str:
    """The amount as a plain number with the currency's decimals (1000.125, 1089, 30.00), and
    any further decimals it has rather than hide them: for CSV."""
    return f"{_to_places(amount, code)[0]:f}"


def money(amount: Decimal | None, code: str) -> str:
    """The amount with its currency and the locale's grouping: "1,000.125 KWD", "1,089 JPY"."""
    if amount is None:
        return ""
    value, places = _to_places(amount, code)
    value = value if value else abs(value)  # no "-0.00"
    if -30 < value.adjusted() < 30:
        # The locale's grouping (en: "," every 3 digits, "." before the decimals), written by
        # Python's own formatter: a list page shows 150 amounts, Django's costs 25 µs each.
        number = f"{value:,f}"
    else:  # written out, it could be a billion digits: the locale's formatter shortens it
        number = number_format(value, places, force_grouping=True)
    return f"{number} {code}"
