"""Small server-rendered bar charts (inline SVG, no JavaScript, no CDN) that a person can read:
a value on every bar, a baseline and labels under it, a total, and a text description for
screen readers; and money in the company currency with the locale's thousands separators."""

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.utils.formats import date_format, number_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

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
    """Each bar's geometry, as the strings the SVG shows (no number formatting per attribute
    at render time)."""
    top = max((value for _, value in pairs), default=0) or 1
    return [
        {
            "label": label,
            "value": value,
            "height": str(h),
            "y": str(TOP + HEIGHT - h),
            "value_y": str(TOP + HEIGHT - h - 4),
            "x": str(i * step),
            "width": str(width),
            "middle": str(i * step + width // 2),
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
    total = sum(bar["value"] for bar in bars)
    chart = {
        "bars": bars,
        "total": total,
        "baseline": str(TOP + HEIGHT),
        "label_y": str(TOP + HEIGHT + 14),
        "bar_class": "bar overdue-bar",
    }
    described = " ".join(
        f"{date_format(b['day'], 'MONTH_DAY_FORMAT')}: {b['value']}." for b in bars if b["value"]
    )
    chart["svg"] = svg(
        chart,
        "trend",
        400,
        f"Open tasks by due date over the last {days} days: {total} in all",
        described,
    )
    return chart


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
    chart = {
        "bars": bars,
        "count": sum(bar["count"] for bar in bars),
        "total": money(total),
        "baseline": str(TOP + HEIGHT),
        "label_y": str(TOP + HEIGHT + 14),
    }
    chart["svg"] = svg(
        chart,
        "pipeline",
        340,
        f"Open opportunities by stage: {chart['count']} worth {chart['total']}",
        " ".join(f"{b['label']}: {b['count']} worth {b['amount']}." for b in bars),
    )
    return chart


def svg(chart: dict, name: str, width: int, title: str, description: str) -> SafeString:
    """The chart as an accessible inline SVG: a title and a text description for screen
    readers, a value over each bar (none over an empty one), a label under it, a baseline.
    Built here rather than in a template: a page's two charts would otherwise be some 250
    template variables."""
    baseline, label_y = chart["baseline"], chart["label_y"]
    bars = format_html_join(
        "\n",
        '<rect x="{}" y="{}" width="{}" height="{}" class="{}"></rect>{}'
        '<text x="{}" y="{}" text-anchor="middle">{}</text>',
        (
            (
                b["x"],
                b["y"],
                b["width"],
                b["height"],
                chart.get("bar_class", "bar"),
                format_html(
                    '<text x="{}" y="{}" text-anchor="middle" class="value">{}</text>',
                    b["middle"],
                    b["value_y"],
                    b.get("amount", b["value"]),
                )
                if b["value"]
                else "",
                b["middle"],
                label_y,
                b["label"],
            )
            for b in chart["bars"]
        ),
    )
    return format_html(
        '<svg class="chart" id="{name}-chart" viewBox="0 0 {width} 150" role="img" '
        'aria-labelledby="{name}-title {name}-desc"><title id="{name}-title">{title}</title>'
        '<desc id="{name}-desc">{description}</desc>{bars}'
        '<line x1="0" x2="{width}" y1="{baseline}" y2="{baseline}" class="axis"></line></svg>',
        name=name,
        width=width,
        title=title,
        description=description,
        bars=bars,
        baseline=baseline,
    )
