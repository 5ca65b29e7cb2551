"""Reading the backlog as threads, for the pages of accounts, contacts and leads."""

from dataclasses import dataclass, field

from mailsync import backlog
from mailsync.models import BacklogEmail

# The newest emails a page groups into threads: a page stays one bounded query however long
# the history is.
PAGE = 200


@dataclass
class Thread:
    key: str
    subject: str
    emails: list[BacklogEmail] = field(default_factory=list)

    @property
    def latest(self) -> BacklogEmail:
        return self.emails[0]

    @property
    def participants(self) -> list[str]:
        return sorted({e.from_name or e.from_address for e in self.emails} - {""})


def threads(user, addresses: list[str], limit: int = PAGE) -> list[Thread]:
    """The threads of emails with these addresses that `user` may read, newest first."""
    emails = (
        backlog.about(addresses)
        .filter(backlog.visible_to(user))
        .defer("raw", "html_body", "text_body")
        .order_by("-date", "-pk")[:limit]
    )
    grouped: dict[str, Thread] = {}
    for email in emails:
        thread = grouped.setdefault(email.thread_key, Thread(email.thread_key, email.subject))
        thread.emails.append(email)
    for thread in grouped.values():
        thread.subject = thread.emails[-1].subject or thread.latest.subject
    return list(grouped.values())
