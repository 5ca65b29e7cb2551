"""Benchmark of the email list ("Email" in the navigation) on PostgreSQL. Prints figures;
asserts nothing.

    .venv/bin/python -m bench.email_list [--emails 1000000] [--contacts 1000000] [--repeat 30]
        [--database vigil_bench_email_list] [--reuse]

Builds EMAILS backlog emails (a copy each in one of 200 reps' mailboxes, 10 teams; from and
to addresses, a third of senders one of CONTACTS contacts'; texts of 40-120 words; one email
in a thousand undated), then times the list page through Django (middleware, query,
template) as a rep, a manager and an administrator: the first page, a page 20 pages in (by
cursor), filtered pages (received, not linked to a record) and searches (a common word, a rare
word, an address).
Then serves the same pages from gunicorn to 20 signed-in clients, paced and without pause,
as bench.crm_pages does. Target: p95 under 100 ms for each, paced, and at least 100 pages/s
without pause, at 1,000,000 emails. --reuse times an earlier build again.
"""

import argparse
import importlib
import re
import time
from datetime import UTC, datetime

from bench.common import percentile, setup, sql, timed
from bench.crm_pages import Page, measure
from bench.notifications import PASSWORD

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TEAMS, REPS_PER_TEAM = 10, 20
SENDERS, KNOWN_SENDERS = 60_000, 20_000  # a third of the addresses mail comes from are contacts'
VOCABULARY = 5_000  # words w1..w5000: w1 in most texts, the last ones in few


def build(emails: int, contacts: int) -> None:
    from django.contrib.auth.hashers import make_password

    reps = TEAMS * REPS_PER_TEAM
    p = {"n": emails, "teams": TEAMS, "reps": reps, "per": REPS_PER_TEAM, "now": NOW}
    p["pw"] = make_password(PASSWORD)
    sql(
        "INSERT INTO crm_team (name, kind)"
        " SELECT 'Team ' || g, 'sales' FROM generate_series(1, %(teams)s) g",
        p,
    )
    user = (
        "INSERT INTO crm_user (password, is_superuser, username, first_name, last_name, email,"
        " is_staff, is_active, date_joined, role, team_id, session_epoch, time_zone)"
    )
    sql(
        user + " SELECT %(pw)s, false, 'rep' || g, '', '', 'rep' || g || '@vigil.example',"
        " false, true, %(now)s, 'rep', (SELECT min(id) FROM crm_team) + g / %(per)s, 0, ''"
        " FROM generate_series(0, %(reps)s - 1) g",
        p,
    )
    sql(
        user + " SELECT %(pw)s, false, 'manager' || g, '', '', 'manager' || g || '@vigil.example',"
        " false, true, %(now)s, 'manager', (SELECT min(id) FROM crm_team) + g - 1, 0, ''"
        " FROM generate_series(1, %(teams)s) g",
        p,
    )
    sql(
        user + " VALUES (%(pw)s, true, 'admin', '', '', 'admin@vigil.example', true, true,"
        " %(now)s, 'admin', NULL, 0, '')",
        p,
    )
    sql(
        "INSERT INTO mailsync_mailbox (owner_id, provider, auth, address, username, imap_host,"
        " imap_port, imap_security, secret, access_token, status, claim, attempts, last_error,"
        " syncs, created_at)"
        " SELECT id, 'imap', 'password', email, email, 'imap.example', 993, 'ssl', '', '',"
        " 'active', '', 0, '', 0, %(now)s FROM crm_user WHERE role = 'rep'",
        p,
    )
    sql(
        "INSERT INTO crm_account (name, team_id, created_at) SELECT 'Account ' || g,"
        " (SELECT min(id) FROM crm_team) + g %% %(teams)s, %(now)s FROM generate_series(1, 2000) g",
        p,
    )
    # The first KNOWN_SENDERS contacts are every third sender (as written by hand: capitals),
    # the rest never wrote: a "not linked" page must not read every contact's address.
    sql(
        "INSERT INTO crm_contact (account_id, name, email, phone, status)"
        " SELECT (SELECT min(id) FROM crm_account) + g %% 2000, 'Contact ' || g,"
        " CASE WHEN g <= %(known)s THEN 'Lead' || 3 * g || '@Client' || (3 * g %% 97)"
        " || '.example' ELSE 'contact' || g || '@customer' || (g %% 89) || '.example' END,"
        " '', 'active' FROM generate_series(1, %(contacts)s) g",
        {**p, "contacts": contacts, "known": KNOWN_SENDERS},
    )
    # Drop the search index while loading: building it once afterwards is much faster than
    # keeping it up to date row by row.
    sql("DROP INDEX IF EXISTS backlogemail_search")
    sql(
        "INSERT INTO mailsync_backlogemail (content_key, message_key, message_id, in_reply_to,"
        ' "references", thread_key, from_name, from_address, "to", cc, date, subject,'
        " text_body, html_body, attachments, raw_size, raw_compressed, direction,"
        " sent_from_crm, parse_warnings, unparsed, kind, delivery_report, created_at)"
        " SELECT 'bench:' || n, 'm' || n || '@client.example', '<m' || n || '@client.example>',"
        " '', '[]', 't' || (n / 3) || '@client.example', 'Lead ' || (n %% %(senders)s),"
        " 'lead' || (n %% %(senders)s) || '@client' || ((n %% %(senders)s) %% 97) || '.example',"
        " jsonb_build_array('rep' || (n %% %(reps)s) || '@vigil.example'), '[]',"
        " CASE WHEN n %% 1000 = 0 THEN NULL ELSE %(now)s - n * interval '1 minute' END,"
        " 'Campaign ' || n || ' w' || (1 + n %% 50),"
        " (SELECT string_agg('w' || (1 + floor(%(vocabulary)s * power(random(), 3))::int), ' ')"
        "  FROM generate_series(1, 40 + n %% 81)),"
        " '', '[]', 2000, false, CASE WHEN n %% 5 = 0 THEN 'outbound' ELSE 'inbound' END,"
        " n %% 20 = 0, '[]', false, 'person', '[]', %(now)s - n * interval '1 minute'"
        " FROM generate_series(1, %(n)s) n",
        {**p, "vocabulary": VOCABULARY, "senders": SENDERS},
    )
    sql(
        "INSERT INTO mailsync_mailboxcopy (email_id, mailbox_id, folder, uidvalidity, uid,"
        " sort_at, direction, sent_from_crm)"
        " SELECT e.id, (SELECT min(id) FROM mailsync_mailbox) + e.id %% %(reps)s,"
        " CASE WHEN e.direction = 'outbound' THEN 'sent' ELSE 'inbox' END, 1, e.id,"
        " COALESCE(e.date, e.created_at), e.direction, e.sent_from_crm"
        " FROM mailsync_backlogemail e",
        p,
    )
    sql(
        "INSERT INTO mailsync_emailaddress (email_id, address, role)"
        " SELECT id, from_address, 'from' FROM mailsync_backlogemail"
        " UNION ALL SELECT id, \"to\"->>0, 'to' FROM mailsync_backlogemail"
    )
    migration = importlib.import_module("mailsync.migrations.0009_email_links_and_search")
    sql(migration.SEARCH_INDEX)
    sql("VACUUM ANALYZE")


def page_times(client, url: str, repeat: int) -> list[float]:
    client.get(url)  # warm: the first request of a process pays for imports and caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}")
    return times


def cursor_20_pages_in(client) -> str:
    """The URL of the 21st page (or the last, for a user with fewer)."""
    url = "/mail/"
    for _ in range(20):
        older = re.search(r"older=(-?\d+_\d+)", client.get(url).content.decode())
        if older is None:
            break
        url = f"/mail/?older={older[1]}"
    return url


PAGES = {
    "first page": "/mail/",
    "received": "/mail/?direction=inbound",
    "not linked": "/mail/?unlinked=1",
    "from the CRM": "/mail/?crm=1",
    "search, common word": "/mail/?q=w1",
    "search, rare word": "/mail/?q=w4999",
    "search, two words": "/mail/?q=w2+w3",
    "search, an address": "/mail/?q=lead1234@client70.example",
    "search + not linked": "/mail/?q=w7&unlinked=1",
}


def in_process(repeat: int) -> None:
    """Each page through Django's test client, one after another, as a rep, a manager and
    the administrator."""
    from django.test import Client

    from crm.models import User

    print(f"in-process, one client: p50 / p95 / max in ms over {repeat}:")
    worst = 0.0
    for username in ("rep0", "manager1", "admin"):
        client = Client()
        client.force_login(User.objects.get(username=username))
        urls = {**PAGES, "20 pages in": cursor_20_pages_in(client)}
        print(f"{username}:")
        for name, url in urls.items():
            ms = page_times(client, url, repeat)
            worst = max(worst, percentile(ms, 95))
            print(
                f"  {name:22} {percentile(ms, 50):6.1f} / {percentile(ms, 95):6.1f} / "
                f"{max(ms):6.1f}"
            )
    print(f"worst p95: {worst:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--emails", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8, help="paced run, per page")
    parser.add_argument("--burst", type=float, default=4, help="run without pause, per page")
    parser.add_argument("--database", default="vigil_bench_email_list")
    parser.add_argument("--reuse", action="store_true", help="time an earlier build again")
    parser.add_argument("--served-only", action="store_true", help="skip the in-process run")
    args = parser.parse_args()
    setup(args.database, fresh=not args.reuse)
    from django.conf import settings
    from django.test import Client

    from crm.models import User
    from mailsync.models import BacklogEmail

    settings.ALLOWED_HOSTS = ["*"]
    built: dict[str, float] = {}
    if not args.reuse:
        with timed(built, "build"):
            build(args.emails, args.contacts)
        print(f"built {args.emails:,} emails, {args.contacts:,} contacts in {built['build']:.0f} s")
    print(f"emails: {BacklogEmail.objects.count():,}")
    if not args.served_only:
        in_process(args.repeat)
    client = Client()
    client.force_login(User.objects.get(username="admin"))
    served = [Page("email", name, url) for name, url in PAGES.items()]
    served.append(Page("email", "20 pages in", cursor_20_pages_in(client)))
    measure(served, args.clients, args.seconds, args.burst)


if __name__ == "__main__":
    main()
