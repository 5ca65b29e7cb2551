"""Benchmark of nurture_send on PostgreSQL. Prints figures; asserts nothing.

    .venv/bin/python -m bench.nurture [--enrollments 100000] [--contacts 1000000]
                                      [--windows off|on|both]

Builds ENROLLMENTS leads entering Nurture P2 (the trigger enrols them; a few suppressed or
without a valid address), all due, in a four-step sequence, then times through the engine one
run that renders every lead's first email in the sandbox and queues it (target: at least 2,000
emails per second on a 2-core machine) and a re-run of the same day (sends nothing). With
--windows on (or both: off first, then the same leads again), the run works with a send
window in each lead's zone and the hourly caps on: the leads are in eight countries (their
own, their zone's or their contact's account's) and 500 domains, every window open at the
run's time and no cap reached, so both runs send the same emails. Then the suppression build
over CONTACTS contacts, a quarter rejected (target: under 10 s).
"""

import argparse
from datetime import UTC, datetime, time, timedelta

from bench.common import peak_rss_mb, setup, sql, timed

AS_OF = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # a Monday, no holiday in the leads' countries
# Countries whose 07:00-19:00 is open at AS_OF (08:00 UTC): London 08:00 … Singapore 16:00.
COUNTRIES = ("GB", "DE", "FR", "PT", "ZA", "AE", "IN", "SG")
DOMAINS = 500
BODY = (
    "<p>Hello {{ first_name }},</p><p>A few weeks ago we talked about advertising for "
    "{{ company|default('your company') }}. Is it still on your list? {{ owner_name }} "
    "({{ owner_email }}) can set up a first campaign this month.</p>"
    "{% if contact_name %}<p>Best to {{ contact_name|title }}.</p>{% endif %}"
)


def build(enrollments: int) -> None:
    from nurture.models import EmailTemplate, Sequence, Step

    sequence = Sequence.objects.create(name="P2", active=True)
    for order, wait in enumerate((0, 3, 4, 7), start=1):
        template = EmailTemplate.objects.create(
            name=f"Step {order}", subject=f"{{{{ first_name }}}}, step {order}", body=BODY
        )
        Step.objects.create(sequence=sequence, order=order, template=template, wait_days=wait)
    sql(
        "INSERT INTO crm_user (password, is_superuser, username, first_name, last_name, email,"
        " is_staff, is_active, date_joined, role, session_epoch)"
        " SELECT '!', false, 'rep' || n, 'Rep', 'Number ' || n, 'rep' || n || '@vigil.example',"
        " false, true, now(), 'rep', 0 FROM generate_series(1, 50) n"
    )
    # Accounts in each country, a contact each: a tenth of the leads are placed through them.
    sql(
        "INSERT INTO crm_account (name, country, created_at)"
        " SELECT 'Account ' || n, (%s::text[])[1 + n %% 8], now() FROM generate_series(0, 799) n",
        [list(COUNTRIES)],
    )
    sql(
        "INSERT INTO crm_contact (account_id, name, email, phone, status, status_reason)"
        " SELECT id, 'Contact of ' || name, '', '', 'active', '' FROM crm_account"
    )
    # A lead: its own country (n % 10 < 6), its own zone (6, 7), its contact's account's
    # (8), or none (9: the company's, UTC here).
    sql(
        "INSERT INTO crm_rph (name, company, email, owner_id, status, status_changed_at,"
        " country, time_zone, contact_id)"
        " SELECT 'Lead ' || n || ' Person', 'Company ' || (n %% 5000),"
        "  CASE WHEN n %% 1000 = 1 THEN 'not-an-address'"
        "   ELSE 'lead' || n || '@prospect' || (n %% %s) || '.example' END,"
        "  (SELECT min(id) FROM crm_user) + n %% 50, 'nurture_p2', %s,"
        "  CASE WHEN n %% 10 < 6 THEN (%s::text[])[1 + n %% 8] ELSE '' END,"
        "  CASE n %% 10 WHEN 6 THEN 'Europe/Lisbon' WHEN 7 THEN 'Asia/Dubai' ELSE '' END,"
        "  CASE WHEN n %% 10 = 8 THEN (SELECT min(id) FROM crm_contact) + n %% 800 END"
        " FROM generate_series(1, %s) n",
        [DOMAINS, AS_OF - timedelta(days=1), list(COUNTRIES), enrollments],
    )
    sql(
        "INSERT INTO mailsync_suppression (address, source, reason, created_at)"
        " SELECT email, 'manual', 'bench', now() FROM crm_rph WHERE id % 500 = 7"
    )
    sql("ANALYZE")


def again() -> None:
    """The same leads due again at their first step, as the trigger left them."""
    sql("DELETE FROM nurture_sentstep")
    sql("DELETE FROM mailsync_outboxmessage")
    sql(
        "UPDATE nurture_enrollment SET status = 'active', stop_reason = '', stopped_at = NULL,"
        " last_run_at = NULL, next_due_at = enrolled_at, send_after = NULL, send_until = NULL,"
        ' step_id = (SELECT id FROM nurture_step ORDER BY "order" LIMIT 1)'
    )
    sql("VACUUM ANALYZE")


def windows_and_caps_on() -> None:
    from nurture.models import SendSettings

    SendSettings.objects.create(
        window=True,
        window_days="1234567",
        window_starts=time(7),
        window_ends=time(19),
        skip_holidays=True,
        domain_hourly_cap=1_000,  # 200 leads a domain: counted, never reached
        mailbox_hourly_cap=1_000_000,
    )


def timed_runs(label: str, times: dict) -> None:
    from crm import runner

    rss_before = peak_rss_mb()
    with timed(times, f"{label} run"):
        run = runner.run_job("nurture_send", AS_OF, force=True)
    with timed(times, f"{label} rerun"):
        rerun = runner.run_job("nurture_send", AS_OF + timedelta(minutes=15), force=True)
    sent = run.counts.get("sent", 0)
    print(f"{label}:")
    print(f"  run:    {times[label + ' run']:.2f} s, {run.status}, {run.counts}")
    print(f"          {sent / times[label + ' run']:,.0f} emails rendered and queued per second")
    print(f"  re-run: {times[label + ' rerun']:.2f} s, {rerun.status}, {rerun.counts}")
    print(f"  peak memory: {rss_before:.0f} MB before the run, {peak_rss_mb():.0f} MB after")


def build_contacts(contacts: int) -> None:
    sql(
        "INSERT INTO crm_account (name, created_at)"
        " SELECT 'Account ' || n, now() FROM generate_series(1, 1000) n"
    )
    sql(
        "INSERT INTO crm_contact (account_id, name, email, phone, status)"
        " SELECT (SELECT min(id) FROM crm_account) + n %% 1000, 'Contact ' || n,"
        "  ' Contact' || n || '@Client' || (n %% 97) || '.example', '',"
        "  CASE WHEN n %% 4 = 0 THEN 'rejected' ELSE 'active' END"
        " FROM generate_series(1, %s) n",
        [contacts],
    )
    sql("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--enrollments", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--database", default="vigil_bench_nurture")
    parser.add_argument("--windows", choices=["off", "on", "both"], default="both")
    args = parser.parse_args()
    setup(args.database)
    from crm import registry, runner
    from nurture.models import Enrollment

    times: dict[str, float] = {}
    with timed(times, "enrol"):
        build(args.enrollments)
    enrolled = Enrollment.objects.count()
    print(f"leads entering Nurture P2: {args.enrollments:,}; enrolled by the trigger: {enrolled:,}")
    print(f"        inserting and enrolling them took {times['enrol']:.2f} s")
    if args.windows in ("off", "both"):
        timed_runs("no window, no cap", times)
    if args.windows in ("on", "both"):
        if args.windows == "both":
            again()
        windows_and_caps_on()
        timed_runs("send windows and hourly caps on", times)
    print("target: at least 2,000 emails/s; the re-run sends 0")

    try:
        registry.get("suppression_build")
    except registry.UnknownJob:
        print("suppression build: not built yet (no job 'suppression_build')")
        return
    with timed(times, "contacts"):
        build_contacts(args.contacts)
    with timed(times, "suppression"):
        build_run = runner.run_job("suppression_build", AS_OF, force=True)
    print(f"suppression build over {args.contacts:,} contacts (a quarter rejected):")
    print(f"        {times['suppression']:.2f} s, {build_run.status}, {build_run.counts}")
    print("target: under 10 s")


if __name__ == "__main__":
    main()
