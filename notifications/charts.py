"""Small server-rendered bar charts (inline SVG, no JavaScript, no CDN)."""

from datetime import date, timedelta
from decimal import Decimal

from crm.models import Opportunity

HEIGHT = 100


def _bars(pairs: list[tuple[str, float]]) -> list[dict]:
    top = max((value for _, value in pairs), default=0) or 1
    return [
        {"label": label, "value": value, "height": h, "y": HEIGHT + 10 - h, "x": i * 28}
        for i, (label, value) in enumerate(pairs)
        for h in [round(HEIGHT * value / top)]
    ]


def daily(rows, today: date, days: int) -> list[dict]:
    """Counts per day for the last `days` days, zeros included."""
    counts = {row["day"]: row["count"] for row in rows}
    first = today - timedelta(days=days - 1)
    return _bars(
        [
            ((first + timedelta(d)).strftime("%d"), counts.get(first + timedelta(d), 0))
            for d in range(days)
        ]
    )


def pipeline(rows) -> list[dict]:
    """Open opportunities per stage, in the stages' order, with their total amount."""
    by_stage = {row["stage"]: row for row in rows}
    bars = _bars(
        [
            (label, float(by_stage.get(stage, {}).get("total") or 0))
            for stage, label in Opportunity.Stage.choices
            if stage in Opportunity.OPEN_STAGES
        ]
    )
    for bar, stage in zip(bars, Opportunity.OPEN_STAGES, strict=True):
        bar["count"] = by_stage.get(stage, {}).get("count", 0)
        bar["total"] = by_stage.get(stage, {}).get("total") or Decimal(0)
        bar["x"] *= 3
    return bars
