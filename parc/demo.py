"""Demo PARC agreements on two visiting teams, and this week's run over them."""

from datetime import time, timedelta
from decimal import Decimal

from crm.models import Team
from parc.jobs import generate_parc_visits
from parc.models import Agreement

# plan, what it is, active, first visit and end (days from today)
PLANS = [
    ("FREQ=WEEKLY;BYDAY=TU", "weekly on Tuesday", True, 0, None),
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=TH", "every two weeks on Thursday", True, 0, None),
    ("FREQ=MONTHLY;BYDAY=1MO", "first Monday of the month", True, 0, None),
    ("FREQ=MONTHLY;INTERVAL=3", "quarterly", True, 0, None),
    ("FREQ=WEEKLY;BYDAY=WE", "weekly, ended yesterday", True, -21, -1),
    ("FREQ=WEEKLY;BYDAY=FR", "weekly, paused", False, 0, None),
]


def seed(demo) -> None:
    if Agreement.objects.exists() or not demo.accounts:
        return
    teams = list(Team.objects.filter(kind=Team.Kind.VISITING).order_by("pk")[:2])
    today = demo.now.date()
    Agreement.objects.bulk_create(
        Agreement(
            account=account,
            visiting_team=teams[n % len(teams)],
            plan=plan,
            first_visit=today + timedelta(days=starts),
            end_date=today + timedelta(days=ends) if ends else None,
            visit_time=time(9 + n % 3, 0),
            opportunity_amount=Decimal(350 + 50 * n),
            active=active,
            notes=f"Demo agreement: {label}.",
        )
        for n, (account, (plan, label, active, starts, ends)) in enumerate(
            zip(demo.accounts, PLANS, strict=False)
        )
        if account.account_manager_id
    )
    generate_parc_visits(demo.now)
