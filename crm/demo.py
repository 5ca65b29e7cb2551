"""Demo data for the core CRM, spread around today. Called by `manage.py seed_demo`."""

from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.hashers import make_password

from crm.models import (
    RPH,
    Absence,
    Account,
    Contact,
    Dispatch,
    Event,
    Opportunity,
    Task,
    Team,
    User,
)

PASSWORD = "vigil-demo"  # noqa: S105 - published demo password, refused on shared DBs
SALES_TEAMS = ["North Sales", "South Sales", "Central Sales"]
VISITING_TEAMS = ["Inspection East", "Inspection West"]
COMPANY_WORDS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Soylent",
    "Cyberdyne",
    "Gringotts",
    "Oceanic",
    "Duff",
]
COMPANY_KINDS = ["Media", "Motors", "Foods", "Realty", "Travel", "Retail", "Clinics", "Logistics"]
FIRST = [
    "Ana",
    "Luis",
    "Marta",
    "Jordi",
    "Sofia",
    "Pablo",
    "Elena",
    "Diego",
    "Lucia",
    "Hugo",
    "Carla",
    "Mateo",
    "Irene",
    "Bruno",
    "Nora",
    "Iker",
]
LAST = [
    "Garcia",
    "Martin",
    "Lopez",
    "Sanchez",
    "Perez",
    "Gomez",
    "Ruiz",
    "Diaz",
    "Moreno",
    "Alvarez",
    "Romero",
    "Navarro",
]


def seed(demo) -> None:
    if Team.objects.filter(name=SALES_TEAMS[0]).exists():
        demo.accounts = list(Account.objects.filter(name__startswith="Demo ").order_by("pk"))
        demo.logins = _logins()
        return
    rng, now = demo.rng, demo.now
    password = make_password(PASSWORD)
    sales = [Team.objects.create(name=n, kind=Team.Kind.SALES) for n in SALES_TEAMS]
    visiting = [Team.objects.create(name=n, kind=Team.Kind.VISITING) for n in VISITING_TEAMS]

    User.objects.create(
        username="admin",
        email="admin@vigil.example",
        first_name="Ada",
        last_name="Admin",
        role=User.Role.ADMIN,
        is_staff=True,
        is_superuser=True,
        password=password,
    )
    # Finance watches every team's invoices and records payments; it is in no sales team.
    User.objects.create(
        username="finance",
        email="finance@vigil.example",
        first_name="Fern",
        last_name="Ledger",
        role=User.Role.FINANCE,
        password=password,
    )
    reps = []
    for t, team in enumerate(sales, start=1):
        manager = User.objects.create(
            username=f"manager{t}",
            email=f"manager{t}@vigil.example",
            first_name=FIRST[t],
            last_name=LAST[t],
            role=User.Role.MANAGER,
            team=team,
            is_staff=True,  # managers edit PARC agreements in the admin
            password=password,
        )
        reps += User.objects.bulk_create(
            User(
                username=f"rep{t}{r}",
                email=f"rep{t}{r}@vigil.example",
                first_name=FIRST[(t * 4 + r) % len(FIRST)],
                last_name=LAST[(t + r) % len(LAST)],
                role=User.Role.REP,
                team=team,
                manager=manager,
                password=password,
            )
            for r in range(1, 5)
        )
    inspectors = User.objects.bulk_create(
        User(
            username=f"inspector{i}",
            email=f"inspector{i}@vigil.example",
            role=User.Role.REP,
            team=team,
            password=password,
            first_name=FIRST[i + 8],
            last_name=LAST[i + 6],
        )
        for i, team in enumerate(visiting, start=1)
    )

    # Each account belongs to one rep, chosen once: the account's team and manager are the
    # rep's, and so are the owners of its opportunities, tasks and events.
    account_reps = [reps[n % len(reps)] for n in range(1, 301)]
    accounts = Account.objects.bulk_create(
        Account(
            name=f"Demo {rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)} {n:03d}",
            account_manager=rep.manager,
            team=rep.team,
        )
        for n, rep in enumerate(account_reps, start=1)
    )
    owner_of = {a.pk: rep for a, rep in zip(accounts, account_reps, strict=True)}

    Contact.objects.bulk_create(
        Contact(
            account=a,
            name=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            email=f"contact{a.pk}.{k}@client.example",
            status=Contact.Status.REJECTED if rng.random() < 0.05 else Contact.Status.ACTIVE,
        )
        for a in accounts
        for k in (1, 2)
    )
    lead_statuses = [s for s, _ in RPH.Status.choices]
    RPH.objects.bulk_create(
        RPH(
            name=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            company=f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)}",
            email=f"lead{n}@prospect.example",
            owner=rng.choice(reps),
            status=rng.choice(lead_statuses),
            status_changed_at=now - timedelta(days=rng.randint(0, 60)),
        )
        for n in range(1, 201)
    )
    stages = [s for s, _ in Opportunity.Stage.choices]
    opportunities = Opportunity.objects.bulk_create(
        Opportunity(
            account=a,
            name=f"{a.name} — campaign {k}",
            owner=owner_of[a.pk],
            stage=rng.choice(stages),
            amount=Decimal(rng.randint(5, 500) * 100),
            expected_close=(now + timedelta(days=rng.randint(-30, 90))).date(),
        )
        for a in accounts
        for k in range(1, rng.randint(1, 2) + 1 + (a.pk % 2))
    )
    task_kinds = [k for k, _ in Task.Kind.choices]
    Task.objects.bulk_create(
        Task(
            kind=rng.choice(task_kinds),
            title=f"Call about {o.name}",
            owner=o.owner,
            account=o.account,
            opportunity=o,
            due_at=(due := now + _hours(rng, -20 * 24, 20 * 24)),
            status=Task.Status.DONE if due < now and rng.random() < 0.6 else Task.Status.OPEN,
        )
        for o in opportunities
        for _ in range(2)
    )
    Event.objects.bulk_create(
        Event(
            title=f"Meeting with {a.name}",
            owner=owner_of[a.pk],
            account=a,
            start_at=(start := now + _hours(rng, -10 * 24, 30 * 24)),
            end_at=start + timedelta(hours=1),
        )
        for a in accounts
    )
    dispatch_statuses = [s for s, _ in Dispatch.Status.choices]
    Dispatch.objects.bulk_create(
        Dispatch(
            title=f"Inspect {a.name}",
            team=visiting[i % 2],
            account=a,
            owner=inspectors[i % 2],
            scheduled_at=(at := now + _hours(rng, -7 * 24, 14 * 24)),
            due_at=at + timedelta(hours=4),
            status=rng.choice(dispatch_statuses),
        )
        for i, a in enumerate(accounts[:150])
    )
    # One rep of each sales team on leave this week, a colleague standing in.
    today = now.date()
    Absence.objects.bulk_create(
        Absence(
            user=reps[4 * t],
            kind=Absence.Kind.LEAVE,
            first_day=today - timedelta(days=2),
            last_day=today + timedelta(days=5),
            delegate=reps[4 * t + 1],
            note="Holiday",
        )
        for t in range(len(sales))
    )
    demo.accounts = accounts
    demo.logins = _logins()


def _hours(rng, low: int, high: int) -> timedelta:
    return timedelta(hours=rng.randint(low, high), minutes=rng.choice([0, 15, 30, 45]))


def _logins() -> list[tuple[str, str]]:
    return [
        ("admin", "administrator (Django admin at /admin/)"),
        ("finance", "finance: every invoice, records payments (/invoices/)"),
        ("manager1", "manager of North Sales"),
        ("rep11", "sales rep in North Sales"),
        ("inspector1", "visiting team, Inspection East"),
    ]
