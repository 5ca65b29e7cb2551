"""The mailbox sync's Celery task: one per mailbox, on the `mailsync` queue, so any number of
workers on any number of hosts share the mailboxes and a hung server holds one of them."""

from datetime import datetime

from celery import shared_task

from mailsync import sync

QUEUE = "mailsync"


@shared_task(name="mailsync.sync_mailbox", queue=QUEUE, ignore_result=True)
def sync_mailbox(mailbox_id: int, queued_at: str) -> str:
    return sync.sync_mailbox(mailbox_id, datetime.fromisoformat(queued_at)).status
