"""mailsync_fetch fans the due mailboxes out as one task each on the `mailsync` queue: real
Celery workers on Redis share them, and every mailbox is synced exactly once, even when its
task is delivered twice."""

import contextlib
import re
import time
from contextlib import ExitStack

import pytest
import redis
from django.db import connection
from django.utils import timezone

from crm.runner import run_job
from mailsync.jobs import _send
from mailsync.models import BacklogEmail, Mailbox
from tests.mailsync.factories import imap_mailbox
from tests.mailsync.test_mailbox_sync import message
from tests.processes import QUIET, celery

MAILBOXES = 12
TASK_DONE = re.compile(r"Task mailsync\.sync_mailbox\[.*\] succeeded")


def worker(env, name):
    return celery(
        env,
        "worker",
        "-Q",
        "mailsync",
        "-n",
        f"{name}@%h",
        "--pool=threads",
        "--concurrency=2",
        "--loglevel=INFO",
        *QUIET,
    )


def finished(outputs, expected, timeout=90):
    """Read the workers' output until `expected` sync tasks have finished between them."""
    deadline = time.monotonic() + timeout
    done = 0
    while done < expected and time.monotonic() < deadline:
        for output in outputs:
            with contextlib.suppress(AssertionError):
                output.wait_for(TASK_DONE.pattern, timeout=0.5)
        done = sum(bool(TASK_DONE.search(line)) for output in outputs for line in output.lines)
    return done


@pytest.mark.skipif(connection.vendor != "postgresql", reason="workers share PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_workers_sync_every_mailbox_exactly_once(
    rep, dovecot, imap_user, subprocess_env, settings
):
    # The broker this process sends tasks to (crm.settings_test), emptied of other tests' tasks.
    broker = settings.CELERY_BROKER_URL
    redis.Redis.from_url(broker).flushdb()
    for n in range(MAILBOXES):
        dovecot.append(imap_user.name, "INBOX", message(f"lead{n}@client.example", "me@x.test"))
        imap_mailbox(rep, dovecot, imap_user, address=f"box{n}@x.test")
    env = {**subprocess_env, "CELERY_BROKER_URL": broker}
    now = timezone.now()

    with ExitStack() as stack:
        outputs = [stack.enter_context(worker(env, f"w{k}")) for k in (1, 2)]
        for output in outputs:
            output.wait_for(r"ready\.", timeout=60)
        assert run_job("mailsync_fetch", now).counts == {"queued": MAILBOXES}
        # The broker delivers each task a second time: the copy finds its mailbox done.
        _send(list(Mailbox.objects.values_list("pk", flat=True)), now)
        assert finished(outputs, 2 * MAILBOXES) == 2 * MAILBOXES

    syncs = list(Mailbox.objects.values_list("syncs", flat=True))
    assert syncs == [1] * MAILBOXES
    # Twelve mailboxes of one server account: the same twelve emails, each stored once.
    assert BacklogEmail.objects.count() == MAILBOXES
    took = [sum(bool(TASK_DONE.search(line)) for line in output.lines) for output in outputs]
    assert all(took), f"one worker did every task: {took}"
