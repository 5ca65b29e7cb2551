"""Visit plans: iCalendar recurrence rules (RFC 5545 RRULE), read with dateutil."""

import re
from datetime import date, datetime, time, timedelta

from dateutil.rrule import rrule, rrulestr

# A plan must yield a visit within this long of its first visit, or it is refused as empty.
LOOK_FOR_A_VISIT = timedelta(days=366 * 5)
TOO_FREQUENT = {"HOURLY", "MINUTELY", "SECONDLY"}
EXAMPLE = "e.g. FREQ=WEEKLY;BYDAY=TU"


class PlanError(ValueError):
    pass


def parse_plan(plan: str, first_visit: date) -> rrule:
    """The rule, counted from the first visit; PlanError names what is wrong."""
    text = plan.strip()
    if text.upper().startswith("RRULE:"):
        text = text[len("RRULE:") :]
    upper = text.upper()
    if not text:
        raise PlanError(f"Enter a recurrence rule ({EXAMPLE}).")
    if "\n" in text or any(word in upper for word in ("DTSTART", "EXDATE", "RDATE")):
        raise PlanError("Give one RRULE line only; the first visit date is where it starts.")
    frequency = re.search(r"(?:^|;)FREQ=([A-Z]+)", upper)
    if frequency and frequency.group(1) in TOO_FREQUENT:
        raise PlanError("Visits cannot be more frequent than daily.")
    if re.search(r"(?:^|;)BY(HOUR|MINUTE|SECOND)=", upper):
        raise PlanError("A plan names days only; the visit time is a field of its own.")
    start = datetime.combine(first_visit, time())
    try:
        rule = rrulestr(text, dtstart=start)
    except (ValueError, TypeError) as exc:
        reason = "each part must be NAME=VALUE" if "unpack" in str(exc) else str(exc)
        raise PlanError(f"This is not a recurrence rule ({EXAMPLE}): {reason}.") from None
    if not isinstance(rule, rrule):
        raise PlanError("Give one RRULE line only; the first visit date is where it starts.")
    # An impossible date (30 February) costs dateutil a few seconds: it looks up to year 9999.
    first = rule.after(start, inc=True)
    if first is None or first - start > LOOK_FOR_A_VISIT:
        raise PlanError("This rule yields no visit date (check its COUNT, UNTIL and BY… parts).")
    return rule


def visit_dates(plan: str, first_visit: date, after: date | None, until: date) -> list[date]:
    """The plan's visit dates after `after` (or from the first visit on) up to `until`."""
    rule = parse_plan(plan, first_visit)
    start = datetime.combine(
        max(first_visit, after + timedelta(days=1) if after else first_visit), time()
    )
    end = datetime.combine(until, time())
    if end < start:
        return []
    return [moment.date() for moment in rule.between(start, end, inc=True)]


def next_visits(plan: str, first_visit: date, count: int = 5) -> list[date]:
    rule = parse_plan(plan, first_visit)
    start = datetime.combine(first_visit, time())
    return [moment.date() for moment in rule.xafter(start, count=count, inc=True)]
