"""Benchmark of the mailbox sync against a real Dovecot. Prints figures; asserts nothing.

    .venv/bin/python -m bench.mailsync [--messages 20000]

Appends MESSAGES messages of varied sizes and MIME shapes (plain, HTML with a text
alternative, non-ASCII, with a 20-200 KB attachment, a few malformed) to a Dovecot mailbox,
then times through the sync code a first sync (target: at least 1,000 messages stored per
second), a no-change incremental sync (target: under 200 ms) and reports peak memory. To show
memory is flat in the mailbox's size, a mailbox a quarter as big is synced first, and the peak
after each sync is printed (messages are appended from a child process).
"""

import argparse
import multiprocessing
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from bench.common import peak_rss_mb, setup


def messages(count: int, seed: int):
    rng = random.Random(seed)
    for n in range(count):
        shape = n % 10
        if shape == 9:
            yield (
                f"From: broken{n}@client.example\r\nSubject: broken {n}\r\n"
                "Content-Type: text/plain; charset=x-unknown\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n!!!@@@\r\n"
            ).encode()
            continue
        msg = EmailMessage()
        msg["From"] = f"Lead {n} <lead{n % 500}@client{n % 37}.example>"
        msg["To"] = "rep@example.test"
        msg["Subject"] = f"Campaign {n}" if shape != 3 else f"Campaña nº {n} · été"
        msg["Date"] = format_datetime(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n))
        msg["Message-ID"] = make_msgid(idstring=str(n), domain="client.example")
        text = "Hello,\n\n" + " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 600)))
        msg.set_content(text)
        if shape in (1, 2, 5):
            msg.add_alternative(f"<p>{text}</p><img src='https://t.example/{n}.gif'>", "html")
        if shape == 7:
            msg.add_attachment(
                rng.randbytes(rng.randint(20_000, 200_000)),
                maintype="application",
                subtype="pdf",
                filename=f"offer-{n}.pdf",
            )
        yield msg.as_bytes()


WORDS = [
    "advert",
    "campaign",
    "price",
    "spring",
    "listing",
    "guide",
    "offer",
    "proof",
    "week",
    "director",
    "invoice",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    os.environ["VIGIL_MAILSYNC_PRIVATE_HOSTS"] = "1"  # the benchmark's Dovecot is on 127.0.0.1
    setup("vigil_bench_mailsync")

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from mailsync import crypto
    from mailsync.models import BacklogEmail, Mailbox
    from mailsync.sync import sync_mailbox
    from tests.imapserver import Dovecot, OAuthProvider

    provider = OAuthProvider().start()
    server = Dovecot(introspect_url=provider.introspect_url).start()
    owner = get_user_model().objects.create(username="bench_rep", role="rep")
    try:
        for label, count in (("quarter", args.messages // 4), ("full", args.messages)):
            address = server.add_user(f"bench-{label}")
            started = time.perf_counter()
            # Appended from a child process, so this one's peak memory is the sync's alone.
            child = multiprocessing.get_context("fork").Process(
                target=server.append_many, args=(address, "INBOX", messages(count, seed=count))
            )
            child.start()
            child.join()
            appended = time.perf_counter() - started
            mailbox = Mailbox.objects.create(
                owner=owner,
                provider=Mailbox.Provider.IMAP,
                auth=Mailbox.Auth.PASSWORD,
                address=address,
                username=address,
                imap_host=server.host,
                imap_port=server.port,
                imap_security=Mailbox.Security.NONE,
                secret=crypto.encrypt(server.user(address).password),
                status=Mailbox.Status.ACTIVE,
                created_at=timezone.now(),
            )
            BacklogEmail.objects.all().delete()
            started = time.perf_counter()
            outcome = sync_mailbox(mailbox.pk)
            first = time.perf_counter() - started
            if outcome.status != "synced":
                raise SystemExit(f"the first sync {outcome.status}: {outcome.error}")
            incremental = []
            for _ in range(5):
                started = time.perf_counter()
                again = sync_mailbox(mailbox.pk)
                incremental.append(time.perf_counter() - started)
                if again.stored:
                    raise SystemExit(f"a no-change sync stored {again.stored} messages")
            print(
                f"{label:>7}: {count:,} messages appended in {appended:.1f} s; first sync "
                f"{outcome.status}, {outcome.stored:,} stored in {first:.1f} s = "
                f"{outcome.stored / first:,.0f} messages/s; no-change sync median "
                f"{statistics.median(incremental) * 1000:.0f} ms (max "
                f"{max(incremental) * 1000:.0f} ms); peak RSS so far {peak_rss_mb():.0f} MB"
            )
    finally:
        server.stop()
        provider.stop()


if __name__ == "__main__":
    main()
