"""Benchmark of the mailbox sync against a real Dovecot. Prints figures; asserts nothing.

    .venv/bin/python -m bench.mailsync [--messages 20000]

Appends MESSAGES messages of varied sizes and MIME shapes (plain, HTML with a text
alternative, non-ASCII, with a 20-200 KB attachment, a few malformed) to a Dovecot mailbox,
then times on that one mailbox, in the sync's batches (mailsync.sync._plan):
- download only: FETCH BODY.PEEK[] on one thread, nothing else;
- download + parse: the same, then parse() each message on that thread (one core's worth);
- the first sync through the sync code with VIGIL_MAILSYNC_PARSERS=1 (parsing on the thread
  that downloads, as before parser processes: "before") and with its default, one parser
  process per core ("after"), each into an empty backlog;
and a no-change incremental sync (target: under 200 ms). The target for "after" is 1.5 times
download + parse. Each sync runs in a fresh process, so that its peak RSS is its own whatever
ran before; its parser processes' peak (the largest of them, sampled from /proc) and the CPU
time of both are printed too. To show memory is flat in the mailbox's size, a mailbox a
quarter as big is measured first.
"""

import argparse
import contextlib
import multiprocessing
import os
import random
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from bench.common import setup

SAMPLE = 0.25  # seconds between two looks at the parser processes' memory


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

    from django.conf import settings
    from django.contrib.auth import get_user_model

    from tests.imapserver import Dovecot, OAuthProvider

    provider = OAuthProvider().start()
    server = Dovecot(introspect_url=provider.introspect_url).start()
    owner = get_user_model().objects.create(username="bench_rep", role="rep")
    print(f"parsers by default (VIGIL_MAILSYNC_PARSERS): {settings.VIGIL_MAILSYNC_PARSERS}")
    rows = []
    try:
        for label, count in (("quarter", args.messages // 4), ("full", args.messages)):
            address = server.add_user(f"bench-{label}")
            started = time.perf_counter()
            # Appended from a child process: this one's memory stays what the loops below use.
            child = multiprocessing.get_context("fork").Process(
                target=server.append_many, args=(address, "INBOX", messages(count, seed=count))
            )
            child.start()
            child.join()
            print(
                f"{label:>7}: {count:,} messages appended in {time.perf_counter() - started:.1f} s"
            )
            row = {"label": label, "count": count}
            row["download"] = count / single_thread(server, address, parse_too=False)
            row["download+parse"] = count / single_thread(server, address, parse_too=True)
            for name, parsers in (("before", 1), ("after", settings.VIGIL_MAILSYNC_PARSERS)):
                row.update(first_sync(server, address, owner, name, parsers))
            rows.append(row)
            print(
                f"{label:>7}: sync {row['after']:,.0f} messages/s beside download only "
                f"{row['download']:,.0f} and download + parse {row['download+parse']:,.0f} "
                f"(one thread): sync / (download + parse) = "
                f"{row['after'] / row['download+parse']:.2f}x; no-change sync median "
                f"{row['after no-change'] * 1000:.0f} ms "
                f"(max {row['after no-change max'] * 1000:.0f} ms)"
            )
    finally:
        server.stop()
        provider.stop()
    print()
    print_table(rows)


def single_thread(server, address: str, *, parse_too: bool) -> float:
    """Seconds to read the INBOX on one thread in the sync's batches (sizes first, then FETCH
    BODY.PEEK[] per batch), parsing each message there too if `parse_too`."""
    from mailsync.parsing import parse
    from mailsync.sync import _plan

    started = time.perf_counter()
    with server.client(address, timeout=300) as client:
        client.select_folder("INBOX", readonly=True)
        for batch in _plan(client, client.search(["ALL"])):
            for item in client.fetch(batch, ["BODY.PEEK[]"]).values():
                if parse_too:
                    parse(item[b"BODY[]"])
    return time.perf_counter() - started


def first_sync(server, address: str, owner, name: str, parsers: int) -> dict[str, float]:
    """A first sync of the INBOX into an empty backlog with `parsers`, then no-change syncs,
    in a fresh process (spawned: its memory is that sync's alone, whatever ran before)."""
    from django.utils import timezone

    from bench.common import sql
    from mailsync import crypto
    from mailsync.models import BacklogEmail, Mailbox

    Mailbox.objects.filter(owner=owner).delete()
    BacklogEmail.objects.all().delete()
    sql("VACUUM ANALYZE")  # each sync meets the same tables, not the last one's dead rows
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
    mine, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=synced_in_this_process, args=(theirs, mailbox.pk, parsers)
    )
    child.start()
    figures = mine.recv()
    child.join()
    if isinstance(figures, str):
        raise SystemExit(f"the first sync ({name}) {figures}")
    return {f"{name} {key}" if key != "rate" else name: value for key, value in figures.items()}


def synced_in_this_process(results, mailbox_id: int, parsers: int) -> None:
    """Run in a spawned process (same environment: database, settings): sync the mailbox
    with `parsers`, then five no-change syncs, and send the figures back. Peak RSS is read
    as VmHWM, not ru_maxrss: a process started by fork and exec inherits the ru_maxrss of
    the one it was forked from (here the benchmark's, for the parsers the sync's)."""
    import django

    django.setup()
    from django.test import override_settings

    from mailsync.sync import sync_mailbox

    before = os.times()
    with override_settings(VIGIL_MAILSYNC_PARSERS=parsers), ParserMemory() as parser_memory:
        started = time.perf_counter()
        outcome = sync_mailbox(mailbox_id)
        seconds = time.perf_counter() - started
    after = os.times()
    if outcome.status != "synced":
        results.send(f"{outcome.status}: {outcome.error}")
        return
    incremental = []
    for _ in range(5):
        started = time.perf_counter()
        again = sync_mailbox(mailbox_id)
        incremental.append(time.perf_counter() - started)
        if again.stored:
            results.send(f"stored {again.stored} messages on a no-change sync")
            return
    results.send(
        {
            "rate": outcome.stored / seconds,
            "rss": peak_rss_of("self"),
            "parser rss": parser_memory.peak_mb,
            "cpu": after.user - before.user + after.system - before.system,
            "parser cpu": after.children_user
            - before.children_user
            + after.children_system
            - before.children_system,
            "no-change": statistics.median(incremental),
            "no-change max": max(incremental),
        }
    )


class ParserMemory:
    """While in use, the largest peak RSS among this process's parser processes (children
    running the sync's PARSER_PROGRAM), looked at every SAMPLE seconds. Their peak is
    reached while they parse, before the last look: they sit idle while the last batch is
    stored, and are ended only after."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> "ParserMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        from mailsync.sync import PARSER_PROGRAM

        program = PARSER_PROGRAM.encode()
        while not self._stop.wait(SAMPLE):
            for task in Path("/proc/self/task").iterdir():
                with contextlib.suppress(OSError):  # a thread or a process that just ended
                    for pid in (task / "children").read_text().split():
                        if program in Path(f"/proc/{pid}/cmdline").read_bytes():
                            self.peak_mb = max(self.peak_mb, peak_rss_of(pid))


def peak_rss_of(pid: str) -> float:
    """A process's peak RSS in MB so far (VmHWM, Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def print_table(rows: list[dict]) -> None:
    print(
        "first sync      messages/s, one thread   messages/s, the sync       ratios"
        "                     peak RSS, MB           CPU s"
    )
    print(
        "mailbox   messages  download  dl+parse   before (1)  after (2)  after/before"
        "  after/(dl+parse)  before  after + parsers  before  after + parsers"
    )
    for row in rows:
        print(
            f"{row['label']:<8} {row['count']:>9,} {row['download']:>9,.0f} "
            f"{row['download+parse']:>9,.0f} {row['before']:>12,.0f} {row['after']:>10,.0f} "
            f"{row['after'] / row['before']:>12.2f}x {row['after'] / row['download+parse']:>16.2f}x"
            f" {row['before rss']:>7.0f} {row['after rss']:>6.0f} + {row['after parser rss']:.0f}"
            f" each {row['before cpu']:>7.1f} {row['after cpu']:>6.1f} + "
            f"{row['after parser cpu']:.1f}"
        )


if __name__ == "__main__":
    main()
