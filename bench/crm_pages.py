"""Benchmark of the CRM's lists and search box on PostgreSQL, under load through gunicorn.
Prints one table; asserts nothing.

    .venv/bin/python -m bench.crm_pages [--rows 100000] [--clients 20] [--seconds 8]
        [--burst 4] [--database vigil_bench_crm_pages] [--reuse] [--lists invoices,…]

Builds ROWS leads, contacts, accounts, opportunities and invoices (10 sales teams, 200 reps,
10 managers, an administrator; people's names from 40 first names and 60 surnames, company
names from 50 words, so a surname matches one person in 60 and a word one company in 25),
then, for each list that exists (leads, contacts, accounts, invoices, search; a URL that does
not resolve yet is skipped with a note), times its first page, a filtered page and a search:
  - CLIENTS paced clients (about a second between pages), a third each a rep, a manager and
    an administrator: p50 / p95 per role (target: p95 under 100 ms at 1,000,000 rows);
  - the same clients without pause: pages per second (target: at least 100 on 2 cores), and
    the CPU a page took meanwhile in gunicorn and in PostgreSQL (at 100 pages/s, two cores
    leave 20 ms a page for both);
  - one administrator alone, page after page: what a page costs when the machine is shared.
gunicorn runs 4 workers, as in bench.notifications. --reuse times an earlier build again.
"""

import argparse
import asyncio
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.common import cpu_seconds, percentile, setup, sql, timed
from bench.notifications import PASSWORD, login

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TEAMS, REPS = 10, 200
ROLES = ("rep", "manager", "admin")

FIRST = [
    "Ana",
    "Ben",
    "Carla",
    "David",
    "Elena",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kara",
    "Luis",
    "Mara",
    "Nils",
    "Olga",
    "Pablo",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Ugo",
    "Vera",
    "Wim",
    "Xenia",
    "Yara",
    "Zeno",
    "Alba",
    "Bruno",
    "Celia",
    "Dario",
    "Eva",
    "Felix",
    "Gina",
    "Hans",
    "Ida",
    "Jan",
    "Klara",
    "Lena",
    "Marco",
    "Nora",
]
LAST = [
    "Smith",
    "Garcia",
    "Muller",
    "Rossi",
    "Dubois",
    "Novak",
    "Jensen",
    "Silva",
    "Kowalski",
    "Horvat",
    "Nagy",
    "Popescu",
    "Ivanov",
    "Berg",
    "Costa",
    "Moreau",
    "Fischer",
    "Romano",
    "Lindqvist",
    "Santos",
    "Weber",
    "Ricci",
    "Laurent",
    "Schmidt",
    "Ferrari",
    "Martin",
    "Bauer",
    "Conti",
    "Bernard",
    "Wagner",
    "Greco",
    "Petit",
    "Becker",
    "Bruno",
    "Richard",
    "Hoffmann",
    "Marino",
    "Durand",
    "Koch",
    "Gallo",
    "Leroy",
    "Wolf",
    "Fontana",
    "Roux",
    "Neumann",
    "Rinaldi",
    "Fournier",
    "Braun",
    "Caruso",
    "Girard",
    "Zimmer",
    "Lombardi",
    "Bonnet",
    "Kruger",
    "Moretti",
    "Lambert",
    "Hartmann",
    "Barbieri",
    "Fontaine",
    "Vogel",
]
WORDS = [
    "Atlas",
    "Borealis",
    "Cobalt",
    "Delta",
    "Ember",
    "Fjord",
    "Granite",
    "Harbor",
    "Iris",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Meridian",
    "Nimbus",
    "Onyx",
    "Pioneer",
    "Quartz",
    "Radiant",
    "Summit",
    "Tundra",
    "Umbra",
    "Vertex",
    "Willow",
    "Xylo",
    "Yonder",
    "Zephyr",
    "Aurora",
    "Beacon",
    "Cedar",
    "Dynamo",
    "Eclipse",
    "Falcon",
    "Glacier",
    "Horizon",
    "Indigo",
    "Jade",
    "Keystone",
    "Lotus",
    "Mosaic",
    "Nova",
    "Orbit",
    "Prism",
    "Quest",
    "Raven",
    "Sierra",
    "Titan",
    "Unity",
    "Vista",
    "Wave",
    "Zenith",
]


def _array(words: list[str]) -> str:
    return "ARRAY[" + ", ".join(f"'{word}'" for word in words) + "]"


# A person's name and email, and a company's name, from the row number g.
PERSON = f"({_array(FIRST)})[1 + g %% 40] || ' ' || ({_array(LAST)})[1 + (g / 40) %% 60]"
EMAIL = (
    f"lower(({_array(FIRST)})[1 + g %% 40] || '.' || ({_array(LAST)})[1 + (g / 40) %% 60])"
    f" || g || '@' || lower(({_array(WORDS)})[1 + (g / 7) %% 50]) || (g %% 97) || '.example'"
)
COMPANY = (
    f"({_array(WORDS)})[1 + g %% 50] || ' ' || ({_array(WORDS)})[1 + (g / 50) %% 50]"
    " || ' ' || (ARRAY['Ltd', 'GmbH', 'SA', 'Inc', 'BV'])[1 + g %% 5]"
)

# Row g of every kind is team TEAM's and belongs to OWNER, a rep of that team (rep 1000 + r is
# in team 1 + r % 10). Drawn by hash, not from g % 10: that would tie each first name (g % 40)
# to one team, and a rep's first page would have to skip whole names of other teams.
_TEAM = "(hashint4(g) & 2147483647) %% 10"
TEAM = f"(1 + {_TEAM})"
OWNER = f"(1000 + {_TEAM} + 10 * ((hashint4(-g) & 2147483647) %% 20))"


def build(rows: int) -> None:
    from django.contrib.auth.hashers import make_password
    from django.db import connection

    from crm.indexes import search_statistics

    p = {"rows": rows, "teams": TEAMS, "reps": REPS, "now": NOW, "pw": make_password(PASSWORD)}
    sql(
        "INSERT INTO crm_team (id, name, kind) SELECT g, 'Team ' || g, 'sales'"
        " FROM generate_series(1, %(teams)s) g",
        p,
    )
    user = (
        "INSERT INTO crm_user (id, password, is_superuser, username, first_name, last_name,"
        " email, is_staff, is_active, date_joined, role, team_id, manager_id, session_epoch,"
        " time_zone)"
    )
    sql(
        user + " SELECT g, %(pw)s, false, 'manager' || g, 'Manager', g::text,"
        " 'manager' || g || '@bench.example', false, true, %(now)s, 'manager', g, NULL, 0, ''"
        " FROM generate_series(1, %(teams)s) g",
        p,
    )
    # Rep 1000 + g is in team 1 + g % 10.
    sql(
        user + " SELECT 1000 + g, %(pw)s, false, 'rep' || g, 'Rep', g::text,"
        " 'rep' || g || '@bench.example', false, true, %(now)s, 'rep', 1 + g %% %(teams)s,"
        " 1 + g %% %(teams)s, 0, '' FROM generate_series(0, %(reps)s - 1) g",
        p,
    )
    sql(
        user + " VALUES (999, %(pw)s, true, 'admin', 'Ada', 'Admin', 'admin@bench.example',"
        " true, true, %(now)s, 'admin', NULL, NULL, 0, '')",
        p,
    )
    # Build the search indexes once after loading: much faster than row by row.
    searched = [
        importlib.import_module(f"crm.migrations.{name}")
        for name in (
            "0005_leads",
            "0007_list_indexes_without_locking",
            "0010_prefix_search_indexes",
        )
    ]
    start = importlib.import_module("crm.migrations.0022_start_indexes")
    with connection.schema_editor(atomic=False) as editor:
        for migration in searched:
            migration.drop_search_indexes(None, editor)
        start.drop_start(None, editor)
    sql(
        "INSERT INTO crm_account (id, name, account_manager_id, team_id, created_at)"
        f" SELECT g, {COMPANY} || ' ' || g, {OWNER}, {TEAM},"
        " %(now)s - g * interval '1 minute' FROM generate_series(1, %(rows)s) g",
        p,
    )
    sql(
        "INSERT INTO crm_contact (account_id, name, email, phone, status, status_reason)"
        f" SELECT g, {PERSON}, {EMAIL}, '',"
        " (ARRAY['active', 'active', 'active', 'bounced', 'unsubscribed', 'active', 'active',"
        "  'active', 'active', 'rejected'])[1 + g %% 10], ''"
        " FROM generate_series(1, %(rows)s) g",
        p,
    )
    # Statuses other than Nurture P2, whose trigger would enrol each lead.
    sql(
        "INSERT INTO crm_rph (name, company, email, owner_id, status, status_changed_at,"
        " source, last_activity_at)"
        f" SELECT {PERSON}, {COMPANY}, {EMAIL}, {OWNER},"
        " (ARRAY['new', 'new', 'contacted', 'contacted', 'closed'])[1 + g %% 5],"
        " %(now)s - (g %% 400) * interval '1 day',"
        " (ARRAY['web', 'referral', 'event', 'cold_call', 'import', ''])[1 + g %% 6],"
        " %(now)s - g * interval '1 minute' FROM generate_series(1, %(rows)s) g",
        p,
    )
    sql(
        "INSERT INTO crm_opportunity (account_id, name, owner_id, stage, amount, expected_close,"
        " updated_at)"
        f" SELECT g, {COMPANY} || ' deal', {OWNER},"
        " (ARRAY['prospecting','qualification','proposal','negotiation','won','lost'])"
        "  [1 + g %% 6], (g %% 500) * 100, %(now)s::date + (g %% 180 - 90), %(now)s"
        " FROM generate_series(1, %(rows)s) g",
        p,
    )
    sql(
        "INSERT INTO finance_invoice (account_id, number, voucher_date, payment_terms_days,"
        " currency, amount, debt)"
        " SELECT g, 'INV-' || lpad(g::text, 7, '0'), %(now)s::date - (g %% 150), 30, 'EUR',"
        " 100 + g %% 900, CASE WHEN g %% 2 = 0 THEN 0 ELSE 100 + g %% 900 END"
        " FROM generate_series(1, %(rows)s) g",
        p,
    )
    with connection.schema_editor(atomic=False) as editor:
        for migration in searched:
            migration.add_search_indexes(None, editor)
        start.add_start(None, editor)  # and, as crm 0022, replace 0010's on those columns
        start.drop_prefix(None, editor)
    search_statistics(connection)  # as crm 0017 leaves them
    for table in ("crm_team", "crm_user", "crm_account"):
        sql(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )  # noqa: S608
    sql("VACUUM ANALYZE")


@dataclass(frozen=True)
class Page:
    list_name: str
    label: str
    url: str


PAGES = [
    Page("leads", "first page", "/leads/"),
    Page("leads", "status: contacted", "/leads/?status=contacted"),
    Page("leads", "search: a surname", "/leads/?q=kowalski"),
    Page("contacts", "first page", "/contacts/"),
    Page("contacts", "status: rejected", "/contacts/?status=rejected"),
    Page("contacts", "search: a surname", "/contacts/?q=kowalski"),
    # A first name in 40 (Nora): its contacts sit in one block of the name order, past the
    # walk, so every match of the name and the email is read (a rep's: a team's 100,000).
    Page("contacts", "search: a first name", "/contacts/?q=nora"),
    Page("accounts", "first page", "/accounts/"),
    Page("accounts", "newest first", "/accounts/?sort=-created"),
    Page("accounts", "search: a word", "/accounts/?q=meridian"),
    Page("invoices", "first page", "/invoices/"),
    Page("invoices", "31-60 days past due", "/invoices/?bucket=31-60"),
    Page("invoices", "search: a number", "/invoices/?q=INV-00123"),
    Page("search", "a surname", "/search/?q=kowalski"),
    Page("search", "an email", "/search/?q=nora.kowalski"),
    Page("search", "2 letters", "/search/?q=ko"),
    # The start of a first name in 40 (Nora): typed on the way to a name, and every match of
    # a list sorted by name is read when the walk from "A" does not reach them.
    Page("search", "2 letters of a name", "/search/?q=no"),
    Page("search", "a word nobody has", "/search/?q=zzqx"),
    Page("search", "a word in every email", "/search/?q=example"),
]


def existing_pages() -> list[Page]:
    from django.urls import Resolver404, resolve

    pages = []
    for page in PAGES:
        try:
            resolve(urllib.parse.urlsplit(page.url).path)
        except Resolver404:
            print(f"skipped {page.url}: no such page yet")
            continue
        pages.append(page)
    return pages


def serve():
    """gunicorn on a socket of ours, listening before it starts: requests wait in its backlog
    until a worker is up, so nothing has to poll for readiness."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=256)
    os.set_inheritable(listener.fileno(), True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "ALLOWED_HOSTS": "127.0.0.1",
        "PYTHONWARNINGS": "ignore",
    }
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    command = [gunicorn, "crm.wsgi", "--bind", f"fd://{listener.fileno()}", "--workers", "4"]
    server = subprocess.Popen(
        [*command, "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        pass_fds=(listener.fileno(),),
    )
    return server, listener, f"http://127.0.0.1:{listener.getsockname()[1]}"


@dataclass
class Client:
    role: str
    cookies: str


def sessions(base: str, clients: int) -> list[Client]:
    """CLIENTS signed-in sessions, a third each a rep, a manager and the administrator; reps
    and managers of different teams."""
    made = []
    for i in range(clients):
        role = ROLES[i % 3]
        username = {"rep": f"rep{i}", "manager": f"manager{1 + i % TEAMS}", "admin": "admin"}[role]
        jar = login(base, username).cookie_jar
        made.append(Client(role, "; ".join(f"{c.name}={c.value}" for c in jar)))
    return made


def load(base: str, clients: list[Client], url: str, seconds: float, pause: float):
    """Each client asks for `url` in a loop for `seconds`, `pause` between pages. Raw HTTP/1.1
    from coroutines on one thread, as bench.notifications does. Returns the latencies in ms by
    role and the number of failed requests."""
    return asyncio.run(_load(base, clients, url, seconds, pause))


async def _load(base, clients, url, seconds, pause):
    host, port = urllib.parse.urlsplit(base).hostname, urllib.parse.urlsplit(base).port
    latencies: dict[str, list[float]] = {role: [] for role in ROLES}
    errors = 0
    deadline = time.monotonic() + seconds

    async def client(one: Client, offset: float) -> None:
        nonlocal errors
        request = (
            f"GET {url} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {one.cookies}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        await asyncio.sleep(offset)  # spread the paced clients over the first second
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(request)
                response = await reader.read()
                writer.close()
            except OSError:
                errors += 1
                continue
            if not response.startswith(b"HTTP/1.1 200"):
                errors += 1
                await asyncio.sleep(pause or 0.01)
                continue
            latencies[one.role].append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(pause)

    await asyncio.gather(*(client(c, pause * i / len(clients)) for i, c in enumerate(clients)))
    return latencies, errors


def measure(pages: list[Page], clients: int, seconds: float, burst: float) -> None:
    server, listener, base = serve()
    try:
        signed_in = sessions(base, clients)
        roles = {role: sum(c.role == role for c in signed_in) for role in ROLES}
        print(
            f"{clients} clients ({roles['rep']} reps, {roles['manager']} managers, "
            f"{roles['admin']} administrator sessions); paced: about 1 s between pages, "
            f"{seconds:.0f} s a page; no pause: {burst:.0f} s a page; gunicorn 4 workers on "
            f"{os.cpu_count()} cores. p50 / p95 in ms. alone: one administrator's session, "
            "one page after another, p50 (what the page costs, whatever else runs). cpu: "
            "CPU ms a page without pause, gunicorn + PostgreSQL (100 pages/s on "
            f"{os.cpu_count()} cores leaves {os.cpu_count() * 10:.0f} ms)."
        )
        header = f"{'list':9} {'page':22}{'alone':>6}" + "".join(f"{r:>15}" for r in ROLES)
        print(header + f"{'no pause':>18}{'errors':>8}{'cpu: app + db':>16}")
        alone = [c for c in signed_in if c.role == "admin"][:1]
        worst, slowest = 0.0, float("inf")
        for page in pages:
            load(base, signed_in, page.url, 1, 0.0)  # warm: caches, connections
            one, _ = load(base, alone, page.url, 2, 0.0)
            paced, paced_errors = load(base, signed_in, page.url, seconds, 1.0)
            before = cpu_seconds(server.pid)
            fast, fast_errors = load(base, signed_in, page.url, burst, 0.0)
            app, database = (b - a for a, b in zip(before, cpu_seconds(server.pid), strict=True))
            cells = ""
            for role in ROLES:
                ms = paced[role]
                cells += f"{percentile(ms, 50):7.0f} /{percentile(ms, 95):5.0f}" if ms else " " * 15
                worst = max(worst, percentile(ms, 95) if ms else 0)
            served = sum(len(ms) for ms in fast.values())
            rate = served / burst
            all_fast = [m for ms in fast.values() for m in ms]
            slowest = min(slowest, rate)
            p95 = f"(p95 {percentile(all_fast, 95):4.0f})" if all_fast else ""
            print(
                f"{page.list_name:9} {page.label:22}{percentile(one['admin'] or [0], 50):6.0f}"
                f"{cells}{rate:7.0f}/s {p95:10}"
                f"{paced_errors + fast_errors:6d}"
                + (f"{app / served * 1000:9.1f} +{database / served * 1000:5.1f}" if served else "")
            )
        print(
            f"worst paced p95: {worst:.0f} ms (target < 100); fewest pages/s without pause: "
            f"{slowest:.0f} (target >= 100)"
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()
        listener.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8, help="paced run, per page")
    parser.add_argument("--burst", type=float, default=4, help="run without pause, per page")
    parser.add_argument("--database", default="vigil_bench_crm_pages")
    parser.add_argument("--reuse", action="store_true", help="time an earlier build again")
    parser.add_argument("--lists", default="", help="only these lists, e.g. invoices,contacts")
    args = parser.parse_args()
    setup(args.database, fresh=not args.reuse)
    from crm.models import RPH

    if not args.reuse:
        built: dict[str, float] = {}
        with timed(built, "build"):
            build(args.rows)
        print(
            f"built {args.rows:,} each of leads, contacts, accounts, opportunities and invoices "
            f"in {built['build']:.0f} s"
        )
    print(f"leads: {RPH.objects.count():,}; load average {os.getloadavg()[0]:.1f}")
    only = {name for name in args.lists.split(",") if name}
    pages = [page for page in existing_pages() if not only or page.list_name in only]
    measure(pages, args.clients, args.seconds, args.burst)


if __name__ == "__main__":
    main()
