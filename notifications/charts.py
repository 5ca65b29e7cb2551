"""Small server-rendered bar charts (inline SVG, no JavaScript, no CDN) that a person can read:
a value on every bar, a baseline and labels under it, a total, and a text description for
screen readers; and money in the company currency with the locale's thousands separators."""

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.utils.formats import number_format

from crm.models import Opportunity

HEIGHT = 100
TOP = 16  # room above the tallest bar for its value
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CHF": "CHF "}


def money(amount: Decimal | int | float, currency: str | None = None, places: int = 2) -> str:
    """`amount` with its currency symbol and the locale's grouping: €353,300.00. Rounded half
    up to `places` here, for display only (number_format alone would truncate)."""
    code = currency or settings.VIGIL_CURRENCY
    rounded = Decimal(amount).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    number = number_format(rounded, places, use_l10n=True, force_grouping=True)
    sign, number = ("-", number[1:]) if number.startswith("-") else ("", number)
    return f"{sign}{SYMBOLS.get(code, code + ' ')}{number}"


def _bars(pairs: list[tuple[str, float]], step: int, width: int) -> list[dict]:
    top = max((value for _, value in pairs), default=0) or 1
    return [
        {
            "label": label,
            "value": value,
            "height": h,
            "y": TOP + HEIGHT - h,
            "x": i * step,
            "width": width,
            "middle": i * step + width // 2,
        }
        for i, (label, value) in enumerate(pairs)
        for h in [round(HEIGHT * value / top)]
    ]


def daily(rows, today: date, days: int) -> dict:
    """Counts per day for the last `days` days, zeros included, and their total."""
    counts = {row["day"]: row["count"] for row in rows}
    first = today - timedelta(days=days - 1)
    bars = _bars(
        [
            ((first + timedelta(d)).strftime("%d"), counts.get(first + timedelta(d), 0))
            for d in range(days)
        ],
        step=28,
        width=22,
    )
    for bar, d in zip(bars, range(days), strict=True):
        bar["day"] = first + timedelta(d)
    return {"bars": bars, "total": sum(bar["value"] for bar in bars), "baseline": TOP + HEIGHT}


def pipeline(rows) -> dict:
    """Open opportunities per stage, in the stages' order, with their amounts and totals."""
    by_stage = {row["stage"]: row for row in rows}
    bars = _bars(
        [
            (label, float(by_stage.get(stage, {}).get("total") or 0))
            for stage, label in Opportunity.Stage.choices
            if stage in Opportunity.OPEN_STAGES
        ],
        step=84,
        width=70,
    )
    for bar, stage in zip(bars, Opportunity.OPEN_STAGES, strict=True):
        bar["count"] = by_stage.get(stage, {}).get("count", 0)
        bar["total"] = by_stage.get(stage, {}).get("total") or Decimal(0)
        bar["amount"] = money(bar["total"], places=0)
    total = sum((bar["total"] for bar in bars), Decimal(0))
    return {
        "bars": bars,
        "count": sum(bar["count"] for bar in bars),
        "total": money(total),
        "baseline": TOP + HEIGHT,
    }
